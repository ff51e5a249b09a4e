# Source me: keep freed memory inside each process (glibc's malloc; other C libraries ignore this).
# By default glibc maps every block over 32 MB fresh from the kernel and unmaps it on free, so each
# training step pays page faults for its STFT and fused feature maps again: on 2 CPU cores, demo runs
# with 8 fused channels spent 27-33 % of their CPU time in the kernel. Without mmap, blocks come from the heap and are reused;
# the heap is handed back only when more than 1 GiB at its top is free. A GLIBC_TUNABLES of your own
# that sets mmap_max is left alone. `python scripts/benchmark.py --allocator` measures the difference.
case ":${GLIBC_TUNABLES:-}:" in
    *:glibc.malloc.mmap_max=*) ;;
    *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824" ;;
esac
