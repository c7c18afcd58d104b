"""python run.py {CPU,GPU,IPU} --mode {train,eval,train_and_eval,predict} --params YAML [--model_dir DIR] ...

Thin on purpose: the command line, params, data, model and executors live under modelzoo/.
"""

import sys

from modelzoo.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
