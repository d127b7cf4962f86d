"""The papers' experiments that need more than a folder of photos: the MoXI paper's visual SET-SUM task
(:mod:`clearsight.experiments.set_sum`)."""
