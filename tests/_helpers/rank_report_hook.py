"""Test-only hook (loaded with custom_imports): each rank writes a hash of
its parameters after training, and records whether it saved a checkpoint."""
import hashlib
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankReportHook(Hook):

    def before_save_checkpoint(self, runner, checkpoint):
        # save_checkpoint is master-only: only the saving rank gets here
        open(osp.join(runner.work_dir, f'saved_by_rank{get_rank()}'),
             'w').close()

    def after_train(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        digest = hashlib.sha256()
        for name, param in sorted(model.named_parameters()):
            digest.update(name.encode())
            digest.update(param.detach().cpu().numpy().tobytes())
        with open(osp.join(runner.work_dir,
                           f'params_rank{get_rank()}.sha256'), 'w') as f:
            f.write(digest.hexdigest())
