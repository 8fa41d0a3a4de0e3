#!/bin/bash
# Runs the probe under each knob; prints "label<TAB>json".
cd "$(dirname "$0")/.."
P=".venv/bin/python scripts/numerics_probe.py"
run() { label="$1"; shift; printf '%s\t%s\n' "$label" "$(env "$@" 2>&1 | tail -1)"; }
run baseline $P
run threads=1 $P --threads 1
run threads=3 $P --threads 3
run threads=4 $P --threads 4
run OMP_NUM_THREADS=1 OMP_NUM_THREADS=1 $P
run MKL_NUM_THREADS=1 MKL_NUM_THREADS=1 $P
run OMP_NUM_THREADS=4 OMP_NUM_THREADS=4 $P
run ATEN=default ATEN_CPU_CAPABILITY=default $P
run ATEN=avx2 ATEN_CPU_CAPABILITY=avx2 $P
run ONEDNN=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 $P
run ONEDNN=AVX ONEDNN_MAX_CPU_ISA=AVX $P
run ONEDNN=SSE41 ONEDNN_MAX_CPU_ISA=SSE41 $P
run DNNL=SSE41 DNNL_MAX_CPU_ISA=SSE41 $P
run mkldnn=off $P --no-mkldnn
run mkldnn=off,threads=1 $P --no-mkldnn --threads 1
run mkldnn=off,threads=4 $P --no-mkldnn --threads 4
run MKL_CBWR=AVX2 MKL_CBWR=AVX2 $P
run MKL_CBWR=COMPATIBLE MKL_CBWR=COMPATIBLE $P
run MKL_CBWR=AUTO MKL_CBWR=AUTO $P
run MKL_ENABLE_INSTRUCTIONS=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 $P
run MKL_ENABLE_INSTRUCTIONS=SSE4_2 MKL_ENABLE_INSTRUCTIONS=SSE4_2 $P
run MKL_DEBUG_CPU_TYPE=5 MKL_DEBUG_CPU_TYPE=5 $P
run deterministic $P --deterministic
