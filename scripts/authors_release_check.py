"""Run the authors' own test scripts on their release, for results/release.md.

The authors' TEST_CS_ISTA_Net.py / TEST_CS_ISTA_Net_plus.py (github.com/jianzhangcs/
ISTA-Net-PyTorch) reconstruct Set11 with a released checkpoint and print each image's PSNR
and the mean. This script runs them from a checkout of that repository (none of its code is
part of cs-bench), on the CPU (their ``torch.load`` is given ``map_location='cpu'`` in a
temporary copy), and writes their per-image and mean PSNR / SSIM to
``results/release_authors_script.csv``, which ``make tables`` shows beside ours.

    git clone https://github.com/jianzhangcs/ISTA-Net-PyTorch /tmp/istanet
    pip install --target /tmp/cv2pkg opencv-python-headless   # their scripts read with cv2
    PYTHONPATH=/tmp/cv2pkg python scripts/authors_release_check.py --repo /tmp/istanet

``--logs DIR`` parses logs written earlier (``authors_ista_RR.log`` / ``authors_plus_RR.log``)
instead of running the scripts.
"""

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATIOS = (1, 4, 10, 25, 30, 40)  # the release's Phi for 50 % is not in cs-bench's registry
SCRIPTS = {"ista-net": ("TEST_CS_ISTA_Net.py", "ista"),
           "ista-net-plus": ("TEST_CS_ISTA_Net_plus.py", "plus")}
IMAGE = re.compile(r"Run time for .*?([^/\\]+)\.tif is [\d.]+, PSNR is ([\d.]+), SSIM is ([\d.]+)")
MEAN = re.compile(r"Avg PSNR/SSIM for Set11 is ([\d.]+)/([\d.]+)")


def run_scripts(repo, logs):
    work = Path(tempfile.mkdtemp(prefix="istanet-"))
    shutil.copytree(repo, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
    for script, _ in SCRIPTS.values():
        p = work / script
        p.write_text(p.read_text().replace("epoch_num)))", "epoch_num), map_location='cpu'))"))
    for method, (script, tag) in SCRIPTS.items():
        for rr in RATIOS:
            out = subprocess.run([sys.executable, script, "--epoch_num", "200", "--cs_ratio",
                                  str(rr), "--layer_num", "9"], cwd=work, capture_output=True,
                                 text=True, check=False)
            (logs / f"authors_{tag}_{rr}.log").write_text(out.stdout + out.stderr)
            print(method, rr, (MEAN.search(out.stdout) or [None, "failed"])[1], flush=True)


def parse(logs):
    rows = []
    for method, (_, tag) in SCRIPTS.items():
        for rr in RATIOS:
            p = logs / f"authors_{tag}_{rr}.log"
            if not p.is_file():
                continue
            text = p.read_text()
            m = MEAN.search(text)
            if not m:
                continue
            for name, psnr, ssim in IMAGE.findall(text):
                rows.append({"method": method, "ratio": rr / 100, "image": name,
                             "psnr": float(psnr), "ssim": float(ssim)})
            rows.append({"method": method, "ratio": rr / 100, "image": "mean",
                         "psnr": float(m.group(1)), "ssim": float(m.group(2))})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, help="a checkout of jianzhangcs/ISTA-Net-PyTorch")
    ap.add_argument("--logs", type=Path, help="parse these logs instead of running the scripts")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "release_authors_script.csv")
    a = ap.parse_args(argv)
    if not a.repo and not a.logs:
        ap.error("give --repo (run their scripts) or --logs (parse earlier logs)")
    logs = a.logs or Path(tempfile.mkdtemp(prefix="istanet-logs-"))
    if a.repo:
        run_scripts(a.repo, logs)
    rows = [r for r in parse(logs) if r["image"] == "mean"] + \
        [r for r in parse(logs) if r["image"] != "mean"]
    if not rows:
        print("no results parsed", file=sys.stderr)
        return 1
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["method", "ratio", "image", "psnr", "ssim"])
        w.writeheader()
        w.writerows(rows)
    print(f"{a.out}: {sum(r['image'] == 'mean' for r in rows)} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
