"""The evaluation: calibration (calibrate.py), the live-cluster runs (live.py) and the report
(report.py); the virtual-clock replay is the Rust crate in replay/."""
