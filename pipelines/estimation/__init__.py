"""Performance without labels: calibration at promotion (`calibration`), confidence-based performance
estimation per block (`cbpe`), the estimated-drop signal and the join of labels that arrive late
(`late_labels`). Pure: numpy, pandas, scipy and scikit-learn only (docs/estimation.md)."""
