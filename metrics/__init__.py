"""Quality metrics of NVIDIA's StyleGAN papers on the tf2 port: FID, KID and PPL.

`metrics.metric_base.compute(name, ...)` runs one metric and returns its result dict;
`calc_metrics.py` is the command line. See the README section "Metrics: `calc_metrics.py`".
"""
