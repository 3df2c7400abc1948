"""The authors' released ISTA-Net and ISTA-Net+ models as a weights source.

The release (github.com/jianzhangcs/ISTA-Net-PyTorch, CVPR 2018 version) holds, for the
ratios 1, 4, 10, 25, 30, 40 and 50 %, 9-phase ISTA-Net and ISTA-Net+ checkpoints after 200
epochs at lr 1e-4 (``model/CS_ISTA_Net[_plus]_layer_9_group_1_ratio_RR_lr_0.0001/
net_params_200.pkl``) and, for all but 50 %, the sampling matrix and initialisation matrix
they were trained with (``sampling_matrix/phi_0_RR_1089.mat``,
``sampling_matrix/Initialization_Matrix_RR.mat``).

:func:`fetch` gets each file, checks it against :data:`SHA256` (kept here, in the package)
**before** anything reads it, and converts it with :mod:`cs_bench.learned.official` into
safetensors weights in the user weights folder. The checkpoints are pickles: a file whose
sha256 is not the registry's is refused unread, and a file that passes is read with
``torch.load(weights_only=True)``, which loads tensors and refuses code.

Each released model becomes two weights:

* ``release-<arch>_r<ratio>``: the release's own Phi and Qinit (the authors' exact
  measurement; runs need ``--phi`` set to the release's ``phi`` file, :func:`phi_file` gives
  the path). Not at 50 %, whose Phi and Qinit are not in the registry.
* ``release-<arch>_r<ratio>_phi-ours``: the harness's nested Phi (seed 0) with Qinit solved
  on the T91 training blocks (Eq. 12): whether the learned transforms carry over to another
  random Phi of the same size. These weights record the T91 recipe, so they also run at
  other ratios (``trained_ratio``), like the paper's ISTA-Net0.4.

Where the files come from: the folder in ``$CS_BENCH_RELEASE`` when set (a copy in the
authors' layout, as tests and CI use), else the public GitHub address, downloaded with pooch
into ``<cache>/release/``.

>>> checkpoint_path("ista-net-plus", 0.25)
'model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001/net_params_200.pkl'
>>> weights_name("ista-net", 0.1), weights_name("ista-net", 0.5, own_phi=False)
('release-ista-net_r0.1', 'release-ista-net_r0.5_phi-ours')
>>> has_own_phi(0.5), has_own_phi(0.25)
(False, True)
"""

import os
from pathlib import Path

from cs_bench.config import cache_dir
from cs_bench.data import sha256_file
from cs_bench.errors import CSBenchError, WeightsError

BASE_URL = "https://raw.githubusercontent.com/jianzhangcs/ISTA-Net-PyTorch/master/"
RATIOS = (0.01, 0.04, 0.10, 0.25, 0.30, 0.40, 0.50)
ARCHS = {"ista-net": "CS_ISTA_Net", "ista-net-plus": "CS_ISTA_Net_plus"}
ENV = "CS_BENCH_RELEASE"

#: sha256 of every release file cs-bench accepts (the authors' repository, master)
SHA256 = {
    "model/CS_ISTA_Net_layer_9_group_1_ratio_10_lr_0.0001/net_params_200.pkl": "1065f698000b250951e0397253194a1702d732085b14381986600776c6dc317b",
    "model/CS_ISTA_Net_layer_9_group_1_ratio_1_lr_0.0001/net_params_200.pkl": "96abdebae3536d21ab9909119ce8aeeaf20e77daf1be55c1fc481faa4faeaba6",
    "model/CS_ISTA_Net_layer_9_group_1_ratio_25_lr_0.0001/net_params_200.pkl": "01c25cb453749c7ee8bf9082878647884db6f1c2012f03016ab12635d4c02600",
    "model/CS_ISTA_Net_layer_9_group_1_ratio_30_lr_0.0001/net_params_200.pkl": "636bfb98af9cfdd2ea8beb1b9c3212293bcdf9dfd6c45e39b2640d8317db360e",
    "model/CS_ISTA_Net_layer_9_group_1_ratio_40_lr_0.0001/net_params_200.pkl": "5961a5cdf9c63c19eddc4845f22dee88d5e84cfa2405c7cb97e8c1210b0eb499",
    "model/CS_ISTA_Net_layer_9_group_1_ratio_4_lr_0.0001/net_params_200.pkl": "f79be7ce5953dd262e4a29ea5c03d3ccbfc95c175cd2de91a3dd9a27cfa61022",
    "model/CS_ISTA_Net_layer_9_group_1_ratio_50_lr_0.0001/net_params_200.pkl": "cb4fb8486b7109466c975f125652cd36a5f840d5f3981c1894a61cce5516a621",
    "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_10_lr_0.0001/net_params_200.pkl": "3bf165e7799128d4715c1330d0d2b5ea82d2c91e2723f3de0de3c62229e85ca0",
    "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_1_lr_0.0001/net_params_200.pkl": "51aa38a7f64a743459c4d94d85bd237ad0d6bb7bf69a8efd6b44403c4ba7bac0",
    "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001/net_params_200.pkl": "1a29f3cde39ca3c5090396c743434b6ed2df74ebabc39402c7d372f467f248a8",
    "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_30_lr_0.0001/net_params_200.pkl": "8f3bfb58bc3cf50c988d8394afb5ae9647c6a60dfc32b9a4efe0de364eae55ba",
    "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_40_lr_0.0001/net_params_200.pkl": "f228ef9f9fdd89351a48bae81bcfb3cf99010870858ac2aecd5c5dc53af30fb6",
    "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_4_lr_0.0001/net_params_200.pkl": "ed9c424ab7265e43232f06caf6b172ae30ff528c2c19002eddd174118f9d07eb",
    "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_50_lr_0.0001/net_params_200.pkl": "f6e0cef0135005233d7f6b85299087fb5653357da16503f26e90e2a0e01108ce",
    "sampling_matrix/Initialization_Matrix_1.mat": "b1dd038b4610e70d9492b936a0de8563d6149a00090bba10717c4b4b02e34741",
    "sampling_matrix/Initialization_Matrix_10.mat": "394b40df53cf4bed46c1eff14a4eae21a38403cf29a948f534926f713d9e9b52",
    "sampling_matrix/Initialization_Matrix_25.mat": "1a12acc67eb0a63a73eb7ad97cc9030b25df7917b7c36ad94636a99b86caa126",
    "sampling_matrix/Initialization_Matrix_30.mat": "7d559a36421fe75376af006f309819ace9a902033d02d393dfdc4f067553b387",
    "sampling_matrix/Initialization_Matrix_4.mat": "65963bc6a224f03ea1baaacb5cbbdcaa139248a02b8f22576445e045dcebaf4a",
    "sampling_matrix/Initialization_Matrix_40.mat": "97d770cbbd4408fcb3c600ebe44b1e5c3970ec283438f396c24224ec727def19",
    "sampling_matrix/phi_0_10_1089.mat": "ed70cf30de604fda73fdc172be073d783b81bcdc7c51733921afa8fe4331cb76",
    "sampling_matrix/phi_0_1_1089.mat": "e5411d7ccdb243216ec1e9a5e6048af33a9cf9adc116832ff405d53811f7e14d",
    "sampling_matrix/phi_0_25_1089.mat": "5f5149182424f3d7752429fbae5ecfc9a789e115e907e993adbc7f2aa86a3074",
    "sampling_matrix/phi_0_30_1089.mat": "e1b43b2cc2f90f91eac670b129a965f5ddd5fbfe72907aaa45d6da482b222480",
    "sampling_matrix/phi_0_40_1089.mat": "9c2a2855b837ee48905ace599010169af694d9f60811e57dedd89d2830598c30",
    "sampling_matrix/phi_0_4_1089.mat": "45b569bcb61011d639770c40e8c59d9c1b13c9e1c2017b305d500371daf94bd6",
}


def _rr(ratio):
    r = float(ratio)
    if not any(abs(r - x) < 1e-9 for x in RATIOS):
        raise CSBenchError(f"the release has no model at ratio {ratio:g}; valid: "
                           + ", ".join(f"{x:g}" for x in RATIOS))
    return round(r * 100)


def checkpoint_path(arch, ratio):
    if arch not in ARCHS:
        raise CSBenchError(f"the release has no '{arch}' models; valid: {', '.join(ARCHS)}")
    return f"model/{ARCHS[arch]}_layer_9_group_1_ratio_{_rr(ratio)}_lr_0.0001/net_params_200.pkl"


def phi_path(ratio):
    return f"sampling_matrix/phi_0_{_rr(ratio)}_1089.mat"


def qinit_path(ratio):
    return f"sampling_matrix/Initialization_Matrix_{_rr(ratio)}.mat"


def has_own_phi(ratio):
    """Whether the registry has the release's Phi and Qinit at ``ratio`` (not at 50 %)."""
    return phi_path(ratio) in SHA256 and qinit_path(ratio) in SHA256


def weights_name(arch, ratio, own_phi=True):
    return f"release-{arch}_r{float(ratio):g}" + ("" if own_phi else "_phi-ours")


def _download(rel, digest):
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    target = cache_dir() / "release" / Path(rel).parent
    try:
        return Path(pooch.retrieve(BASE_URL + rel, known_hash=f"sha256:{digest}",
                                   fname=Path(rel).name, path=target, progressbar=False))
    except ValueError as exc:  # pooch's hash mismatch: it deletes the file
        raise WeightsError(f"{rel}: the downloaded file fails its sha256 check and was "
                           f"deleted unread ({str(exc).splitlines()[0][:120]})") from None
    except Exception:
        raise WeightsError(
            f"{rel} could not be downloaded: connect to the network and run 'cs-bench weights "
            f"fetch release' again, or set {ENV} to a folder holding the authors' release "
            f"(the layout of github.com/jianzhangcs/ISTA-Net-PyTorch)") from None
    finally:
        logger.setLevel(level)


def get(rel):
    """Local path of release file ``rel``, sha256-checked before anyone reads it."""
    digest = SHA256.get(rel)
    if digest is None:
        raise WeightsError(f"{rel} is not in cs-bench's release registry")
    mirror = os.environ.get(ENV)
    if mirror:
        path = Path(mirror).expanduser() / rel
        if not path.is_file():
            raise WeightsError(f"{rel} is missing from {ENV}={mirror}: point {ENV} at a full copy "
                               f"of the authors' release, or unset it to download the file")
    else:
        path = cache_dir() / "release" / rel
        if not path.is_file():
            return _download(rel, digest)
    got = sha256_file(path)
    if got != digest:
        raise WeightsError(f"{path}: sha256 {got[:12]}… is not the release's {digest[:12]}…; "
                           f"the file was refused unread (damaged or replaced?)")
    return path


def phi_file(ratio):
    """Path of the release's own Phi at ``ratio`` (fetched and checked), for ``run --phi``."""
    if not has_own_phi(ratio):
        raise WeightsError(f"the release's Phi at ratio {ratio:g} is not in the registry: run "
                           f"'{weights_name('ista-net', ratio, own_phi=False)}' with the harness Phi")
    return get(phi_path(ratio))


def _install_ours(arch, ratio, checkpoint, folder, overwrite, data_dir=None):
    """The released network with the harness Phi (seed 0) and Qinit solved on T91."""
    import numpy as np
    import torch

    from cs_bench.sensing import make_phi

    from . import trainset as ts_mod
    from . import weights as wt
    from cs_bench.files import sha256

    from .official import read_checkpoint
    from .qinit import qinit
    from .trainset import Recipe

    net, n_phases, nf, got_arch = read_checkpoint(checkpoint)
    if got_arch != arch:
        raise WeightsError(f"{checkpoint}: an {got_arch} checkpoint where {arch} was expected")
    Phi = make_phi(ratio, 0)
    recipe = Recipe()
    R = ts_mod.moment(recipe, data_dir)
    Q = qinit(R, Phi)
    tensors = {f"net.{k}": v for k, v in net.items()}
    tensors["Qinit"] = torch.tensor(np.asarray(Q), dtype=torch.float32)
    meta = {
        "method": arch, "arch": arch, "ratio": float(ratio), "M": int(Phi.shape[0]),
        "phi": {"kind": "harness", "seed": 0}, "phases": n_phases, "nf": int(nf),
        "gamma": 0.01, "loss": "L", "sym_input": "phase_input", "epochs_done": 200,
        "lr": 1e-4, "batch": 64, "schedule": "constant", "device": None, "val_psnr": None,
        "source": "authors' release, harness Phi (Qinit solved on T91)",
        "official": {"checkpoint": checkpoint_path(arch, ratio),
                     "checkpoint_sha256": sha256(checkpoint)},
        "trainset": {"recipe": recipe.to_dict()}, "torch": torch.__version__,
        "init_from": None,
    }
    return wt.install(tensors, meta, weights_name(arch, ratio, own_phi=False), folder=folder,
                      overwrite=overwrite)


def _up_to_date(name, arch, ratio, folder):
    """Whether weights ``name`` exist and were converted from the registry's checkpoint."""
    from . import weights as wt

    path = Path(folder or wt.user_dir()) / (name + wt.SUFFIX)
    if not path.is_file():
        return False
    try:
        meta = wt.read_meta(path)
    except CSBenchError:
        return False
    return (meta.get("official") or {}).get("checkpoint_sha256") == SHA256.get(
        checkpoint_path(arch, ratio))


def fetch(archs=tuple(ARCHS), ratios=RATIOS, overwrite=False, folder=None, data_dir=None,
          log=print):
    """Get, check and convert the released models; returns the weights names. Weights already
    converted from the registry's checkpoint are kept unless ``overwrite``."""
    from . import weights as wt
    from .official import import_official

    names = []
    for arch in archs:
        for r in ratios:
            wanted = [weights_name(arch, r, own) for own in (True, False)
                      if own is False or has_own_phi(r)]
            if not overwrite and all(_up_to_date(n, arch, r, folder) for n in wanted):
                names += wanted
                log(f"{', '.join(wanted)}: up to date")
                continue
            checkpoint = get(checkpoint_path(arch, r))
            if has_own_phi(r):
                name = weights_name(arch, r)
                import_official(checkpoint, get(phi_path(r)), get(qinit_path(r)), name, ratio=r,
                                overwrite=True, folder=folder)
                _mark_source(name, folder)
                names.append(name)
                log(f"{name}: the release's Phi and Qinit")
            name = weights_name(arch, r, own_phi=False)
            _install_ours(arch, r, checkpoint, folder, True, data_dir)
            names.append(name)
            log(f"{name}: harness Phi, Qinit solved on T91")
    log(f"{len(names)} weights in {folder or wt.user_dir()}")
    return names


def _mark_source(name, folder):
    """Record in the imported weights that they are the release's (for ``weights list``)."""
    from . import weights as wt

    path = Path(folder or wt.user_dir()) / (name + wt.SUFFIX)
    meta, tensors = wt.read_meta(path), wt.read_tensors(path)
    meta.update({"source": "authors' release, its own Phi and Qinit", "epochs_done": 200,
                 "lr": 1e-4, "batch": 64, "schedule": "constant"})
    wt.install(tensors, meta, name, folder=folder, overwrite=True)


def installed(name):
    """Whether release weights ``name`` are in the user folder (the tables skip them if not)."""
    from . import weights as wt

    try:
        wt.find(name)
        return True
    except CSBenchError:
        return False
