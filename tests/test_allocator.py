"""scripts/allocator.sh: glibc keeps large freed blocks for reuse instead of faulting them in again."""
import os
import platform
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "allocator.sh")

# A 64 MB tensor, over glibc's 32 MB mmap cap, allocated, filled and freed as a training step's STFT is
# (numpy would not do: it asks the kernel for huge pages, which fault 512x less often). The heap
# takes a few rounds to settle (here 6), as a training run's first steps.
FAULTS_PER_BLOCK = """
import resource, torch
for _ in range(10):
    torch.ones(16 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(16 * 2**20)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def huge_pages_always():
    """Whether the kernel backs every large mapping with 2 MB pages, so a fresh block faults 512x less."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


def env_with(tunables):
    """This environment with GLIBC_TUNABLES set to `tunables`, or unset for None."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    return env


def tunables_after_sourcing(existing=None):
    out = subprocess.run(["bash", "-c", f'source "{SCRIPT}"; printf %s "$GLIBC_TUNABLES"'], env=env_with(existing),
                         check=True, capture_output=True, text=True)
    return out.stdout


def test_sourcing_turns_off_mmap_and_keeps_other_tunables_and_a_users_own_mmap_setting():
    assert tunables_after_sourcing() == "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824"
    assert tunables_after_sourcing("glibc.malloc.arena_max=2") == (
        "glibc.malloc.arena_max=2:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824")
    assert tunables_after_sourcing("glibc.malloc.mmap_max=8") == "glibc.malloc.mmap_max=8"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
@pytest.mark.skipif(huge_pages_always(), reason="transparent huge pages are 'always' here: the default "
                    "allocator's fresh blocks fault per 2 MB, so the control cannot tell the two apart")
def test_a_large_block_freed_and_allocated_again_is_reused_instead_of_faulted_in():
    def faults(tunables):
        out = subprocess.run([sys.executable, "-c", FAULTS_PER_BLOCK], env=env_with(tunables), check=True,
                             capture_output=True, text=True)
        return float(out.stdout)

    pages = 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    assert faults(None) > 0.5 * pages  # the default maps the block fresh every time
    assert faults(tunables_after_sourcing()) < 0.01 * pages
