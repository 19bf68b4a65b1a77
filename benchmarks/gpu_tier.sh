#!/usr/bin/env bash
# The GPU tier in one run, for an engineer validating a new GPU box (target: under 5 minutes on one GPU):
#   1. what the box is (nvidia-smi) and bitsandbytes' own diagnosis (python -m bitsandbytes);
#   2. llmfound doctor: pass / fail / skip per capability, JSON + a footprint chart;
#   3. pytest -m gpu: the GPU specs (synthetic-weight 1.1B Llama: bf16 vs 8-bit vs 4-bit footprint and peak
#      memory against the analytic bound, device_map="auto", streamed generation).
# Wheels found in .whl/ (bitsandbytes, transformers, tokenizers, rich, sybil: the list and the pip download
# command are in docs/gpu-tier.md) are installed into /tmp/site first. First run: H200, 65 s, see that page.
# Results go to $OUT (or ./gpu-report). Exit status: doctor's if it failed, else pytest's.
set -uo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"   # the interpreter with torch (the GPU box: its python3)
out="${OUT:-gpu-report}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_tier: installing the carried wheels failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
export LLMFOUND_HOME="${LLMFOUND_HOME:-$PWD/.llmfound-home}" LLMFOUND_OFFLINE=1
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
"$py" -m bitsandbytes > "$out/bitsandbytes.txt" 2>&1
echo "python -m bitsandbytes: exit $? (full output in $out/bitsandbytes.txt)"
"$py" -m llmfound doctor --json --plot "$out/footprints.png" > "$out/doctor.json"
doctor_rc=$?
"$py" - "$out/doctor.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("versions:", ", ".join(f"{k} {v}" for k, v in r["versions"].items() if v))
print("accelerator:", r["accelerator"])
for c in r["capabilities"]:
    print(f"{c['status']:>5}  {c['name']:<36} {c['seconds']:6.1f} s  {c['detail']}")
PY
"$py" -m pytest -m gpu -n 0 -p no:cacheprovider -ra -v specs/ 2>&1 | tee "$out/pytest-gpu.log"
pytest_rc=${PIPESTATUS[0]}
echo "gpu_tier: doctor exit $doctor_rc, pytest -m gpu exit $pytest_rc, $((SECONDS - start)) s in all"
[ "$doctor_rc" -ne 0 ] && exit "$doctor_rc"
exit "$pytest_rc"
