"""torchrun entry for test_distributed.py: run main_finetune and save this rank's final weights."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import main_finetune  # noqa: E402

if __name__ == "__main__":
    args = main_finetune.get_args_parser().parse_args(sys.argv[1:])
    main_finetune.check_args(args)
    try:
        model = main_finetune.main(args)
        torch.save(model.state_dict(), os.path.join(args.output_dir, f"rank{os.environ['RANK']}.pt"))
    finally:
        main_finetune.dist.cleanup()
