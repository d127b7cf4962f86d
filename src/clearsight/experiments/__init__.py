"""The papers' experiments: the MoXI paper's visual SET-SUM task (:mod:`clearsight.experiments.set_sum`) and
the CartoonX reproduction's RDE experiments, the lambda sweep (:mod:`clearsight.experiments.lambda_sweep`)
and the comparison of mask initialisations (:mod:`clearsight.experiments.initialisations`). Each runs its
units through :mod:`clearsight.evaluation.driver`, so it resumes from its store and runs on any engine."""
