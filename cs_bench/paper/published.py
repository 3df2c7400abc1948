"""The ISTA-Net / FISTA-Net paper's published numbers (Set11 mean PSNR in dB).

Kept apart from the code that computes ours, so every table shows both side by side.
Seconds are per 256x256 image on the paper's hardware (CPU for the optimisation methods,
GPU for the networks).
"""

#: Table 1 (ratio 0.25): PSNR against the number of phases Np.
TABLE1 = {
    "ISTA-Net": {5: 30.45, 7: 31.17, 9: 31.53, 11: 31.73, 13: 31.81},
    "FISTA-Net": {5: 31.03, 7: 31.57, 9: 31.83, 11: 31.90, 13: 31.90},
}

#: Table 2: PSNR at ratios 0.25 and 0.10, seconds per image and the device they came from.
TABLE2 = {
    "TVAL3": {0.25: 27.84, 0.10: 22.84, "seconds": 35.8, "device": "CPU"},
    "NLR-CS": {0.25: 28.05, 0.10: 14.19, "seconds": 136.3, "device": "CPU"},
    "D-AMP": {0.25: 28.17, 0.10: 21.14, "seconds": 47.5, "device": "CPU"},
    "SDA": {0.25: 24.72, 0.10: 22.43, "seconds": 0.001, "device": "GPU"},
    "ReconNet": {0.25: 25.54, 0.10: 22.68, "seconds": 0.011, "device": "GPU"},
    "Enhanced ReconNet": {0.25: 27.64, 0.10: 24.06, "seconds": 0.011, "device": "GPU"},
    "ISTA-Net": {0.25: 31.53, 0.10: 25.80, "seconds": 0.049, "device": "GPU"},
    "FISTA-Net": {0.25: 31.83, 0.10: 26.01, "seconds": 0.052, "device": "GPU"},
}

#: Table 3 (ratio 0.25): loss L against L* (the starred networks), Np = 7 and 9.
TABLE3 = {
    7: {"ISTA-Net": 31.17, "FISTA-Net": 31.57, "ISTA-Net*": 31.78, "FISTA-Net*": 31.79},
    9: {"ISTA-Net": 31.53, "FISTA-Net": 31.83, "ISTA-Net*": 31.92, "FISTA-Net*": 31.93},
}

#: Table 4: PSNR at ratios 0.2-0.6; ISTA-Net0.4 is the ratio-0.4 model used at every ratio.
TABLE4 = {
    "TVAL3": {0.2: 25.37, 0.3: 28.39, 0.4: 29.76, 0.5: 31.51, 0.6: 33.16},
    "D-AMP": {0.2: 27.94, 0.3: 30.36, 0.4: 33.53, 0.5: 35.83, 0.6: 37.55},
    "Enhanced ReconNet": {0.2: 27.18, 0.3: 29.11, 0.4: 30.49, 0.5: 31.39, 0.6: 32.44},
    "ISTA-Net": {0.2: 30.06, 0.3: 32.91, 0.4: 35.36, 0.5: 37.43, 0.6: 39.11},
    "ISTA-Net0.4": {0.2: 29.77, 0.3: 32.90, 0.4: 35.36, 0.5: 37.31, 0.6: 38.93},
}

#: ISTA-Net and ISTA-Net+ as published in the CVPR 2018 paper (Zhang & Ghanem, "ISTA-Net:
#: Interpretable Optimization-Inspired Deep Network for Image Compressive Sensing", Set11
#: mean PSNR table of the comparison with other methods), the numbers the authors' released
#: models stand for. The PyTorch release's own log (log/PSNR_SSIM_Results_*_ratio_50_*.txt in
#: jianzhangcs/ISTA-Net-PyTorch) gives 37.42 (ISTA-Net) and 38.07 (ISTA-Net+) at 50 %.
CVPR2018 = {
    "ISTA-Net": {0.01: 17.30, 0.04: 21.23, 0.10: 25.80, 0.25: 31.53, 0.30: 32.91, 0.40: 35.36,
                 0.50: 37.43},
    "ISTA-Net+": {0.01: 17.34, 0.04: 21.31, 0.10: 26.64, 0.25: 32.57, 0.30: 33.82, 0.40: 36.06,
                  0.50: 38.07},
}


#: Why a classical row of Tables 2 and 4 differs from the paper by more than 1 dB (the tables
#: print the line under a table where a cell of the row does; {cells} becomes those cells).
#: What each line states is measured here or stated in the papers; what is not known is said.
DIFFERENCE_NOTES = {
    "TVAL3": ("TVAL3 ({cells}): run with the ReconNet authors' settings (mu 2^8, beta 2^5, "
              "300 iterations) at every ratio, it is the paper's row at 0.10 and 0.25 (Table 2); "
              "above that it gains more per ratio step than the paper's row, whose settings for "
              "Table 4 are not stated, so the cause is not isolated."),
    "D-AMP": ("D-AMP ({cells}): BM3D-AMP with one noise level per block (its own effective "
              "noise, as AMP's per-block Onsager term gives), 30 iterations; the paper states "
              "neither its iterations nor its noise estimate, so the cause is not isolated."),
    "NLR-CS": ("NLR-CS ({cells}): started from a smooth least-squares estimate; the paper's "
               "collapse at low ratios (14.19 dB at 0.10) needs a poor start: started from "
               "Phi^T y instead, the same iterations stay near 6.6 dB on T91 at 0.10 "
               "(baselines/nlr_cs.py)."),
}
