"""Entry point: python run.py {CPU,GPU,IPU} --mode ... --params YAML (the executors arrive with the run.py issue)."""

import sys

USAGE = """usage: python run.py {CPU,GPU,IPU} --mode {train,eval,train_and_eval,predict} --params YAML [--model_dir DIR]

The executors are not written yet. Available now:
  python -m modelzoo.tools.convert_checkpoint {convert,list,diff} ...   checkpoint conversion
  python -m modelzoo.tools.demo                                          the model on MiniLM weights
"""

if __name__ == "__main__":
    print(USAGE, file=sys.stderr)
    sys.exit(2)
