"""python run.py {CPU,GPU,IPU} --mode {train,eval,train_and_eval,predict} --params YAML [--model_dir DIR] ...

Thin on purpose: the command line, params, data, model and executors live under modelzoo/.
"""

import sys

from modelzoo.common.openmp import wait_passively_when_predicting

wait_passively_when_predicting(sys.argv[1:])  # before torch loads OpenMP, which reads its settings once

from modelzoo.cli.main import main  # noqa: E402 (after the OpenMP setting above)

if __name__ == "__main__":
    sys.exit(main())
