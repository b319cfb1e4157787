#!/usr/bin/env bash
# The cluster e2e's scenarios (issue 8), on a node that up.sh started, with the project's images that
# project-images.sh built. Each scenario asserts real behaviour of the API server, the kubelet and Stowage; the
# first failure of a scenario ends it with the reason and the state that explains it (pods, events, the
# operator's log), and the run goes on with the next one. Exits non-zero when any scenario failed.
#   1 helm install of helm/stowage (CRD by helm) into a fresh namespace; the operator runs under the chart's
#     ServiceAccount and its log shows no 403 (checked again at the end, over the whole run)
#   2 kubectl apply of examples/k8s/cpu-serving.yaml; Ready; printer columns; Events; the golden greedy text of
#     stories260K through the Service's ClusterIP (kube-proxy), and a chat completion
#   3 kubectl scale (scale subresource) to 2: two replicas, one copy of the weights on the host; to 0 and back
#   4 a second model on the same host: the first stays served while it loads and while it fails
#   5 bad specs refused by the API server with the CRD's messages (schema and CEL)
#   6 a model source that cannot be probed (a missing file; a missing claim) ends in a clear condition, and
#     recovers once fixed
#   7 the operator's pod deleted mid-reconcile: nothing moves, nothing is duplicated; a host pod deleted: it comes
#     back and serves
#   8 kubectl delete of every LlmDeployment: hosts, Services, Secrets and the hosts' budget go; nothing is left
#   9 every pod non-root with a read-only root file system, in namespaces labelled Pod Security "restricted"
#  10 (run after 7) kubectl cordon of the node: the hosts keep serving, untouched (no other node to move to: the
#     deployment says MoveBlocked); kubectl drain without --force is refused by the hosts' PodDisruptionBudget
#     (they have a controller, so --force is not what stops it); kubectl uncordon: MoveBlocked clears
#  11 (run last, or alone: it installs the chart as 1 does when it is not there) scale to zero in the cluster: a deployment with minReplicas 0 and idleTimeout 5s goes
#     Idle (status and the host's metric: its KV given back, its weights resident) and a request through its
#     Service re-activates it; then, with the CPU device shrunk (helm upgrade cpuFraction) to one and a half such
#     deployments, a second one evicts the idle copy (Dormant, an IdleEvicted event, its Service kept) and a request
#     for the first through its Service is held by the host, places it again (evicting the second, idle by then)
#     and is answered. Deletes both and puts cpuFraction back.
# Usage: scenarios.sh [N...]   (default: all, in order; later scenarios expect the earlier ones' state)
#
# On your own cluster (kind, K3s, any fresh single-node cluster with a default StorageClass): build and load the two
# images there, then STOWAGE_E2E_EXTERNAL=1 with KUBECONFIG set; kubectl, helm, curl and jq from PATH. The model
# store is then a claim of the default StorageClass, filled through a loader pod (kubectl cp), and the Services are
# reached through kubectl port-forward on 127.0.0.1. It leaves the CRD installed and removes the rest at the end.
#   STOWAGE_E2E_OPERATOR_IMAGE, STOWAGE_E2E_RUNTIME_IMAGE   images to install (default stowage.local/stowage/*:e2e)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(cd "$CLUSTER_DIR/../.." && pwd)
EXTERNAL=${STOWAGE_E2E_EXTERNAL:-0}
OPERATOR_IMAGE=${STOWAGE_E2E_OPERATOR_IMAGE:-stowage.local/stowage/operator:e2e}
RUNTIME_IMAGE=${STOWAGE_E2E_RUNTIME_IMAGE:-stowage.local/stowage/runtime:e2e}
if [[ $EXTERNAL == 1 ]]; then
  [[ -n ${KUBECONFIG:-} ]] || die "STOWAGE_E2E_EXTERNAL=1 needs KUBECONFIG set to your cluster's"
  CLUSTER_RUN=${STOWAGE_CLUSTER_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/stowage-e2e.XXXXXX")}
  kc() { kubectl "$@"; }
  PULL=IfNotPresent
else
  export KUBECONFIG=$KUBECONFIG_ADMIN
  [[ -f $KUBECONFIG ]] || die "no cluster: $KUBECONFIG is missing (run up.sh)"
  kc() { "$CLUSTER_BIN/kubectl" "$@"; }
  helm() { "$CLUSTER_BIN/helm" "$@"; }
  PULL=Never
fi

OP_NS=stowage-system     # the operator's namespace (created fresh)
NS=default               # where the examples' LlmDeployments live (examples/k8s name it)
RELEASE=stowage
STORE=$CLUSTER_RUN/model-store   # the model-store PersistentVolume's directory on the node (not with EXTERNAL)
MODELS=$ROOT/runtime-image/src/test/resources/models
GOLDEN=$MODELS/stories260K.golden.json
HOST_SELECTOR=app.kubernetes.io/component=runtime-host
MANAGED=app.kubernetes.io/managed-by=stowage-operator
OP_LOGS=$CLUSTER_RUN/logs/operator   # every operator pod's log, kept before a pod goes
FORWARDS=$CLUSTER_RUN/port-forwards  # EXTERNAL: kubectl port-forward processes, their ports and logs
mkdir -p "$OP_LOGS" "$FORWARDS"
trap 'for f in "$FORWARDS"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done; true' EXIT

# ---- reporting
current="" t_scenario=0 failures=0
results=()
step() { echo "e2e:   $*"; }
# fail MESSAGE: prints why and what explains it; the scenario function returns 1 after it.
fail() {
  echo "e2e:   FAILED: $*" >&2
  {
    echo "---- pods"; kc get pods -A -o wide
    echo "---- llmdeployments"; kc get llmdeployments -A -o wide
    echo "---- events in $NS (last 15)"; kc -n "$NS" get events --sort-by=.lastTimestamp | tail -n 15
    echo "---- operator log (last 25 lines, stack frames left out)"
    kc -n "$OP_NS" logs deploy/stowage-operator --tail=200 | grep -v '^\s*at \|^\s*\.\.\. [0-9]' | tail -n 25 | cut -c1-400
  } 2>&1 | sed 's/^/e2e:     /' >&2
  return 1
}
# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND every second until it succeeds.
wait_until() {
  local what=$1 limit=$2 t0
  shift 2
  t0=$(now_ms)
  while ! "$@" >/dev/null 2>&1; do
    (($(now_ms) - t0 > limit * 1000)) && { fail "$what: not within ${limit}s"; return 1; }
    sleep 1
  done
  step "$what ($(since "$t0"))"
}
run_scenario() {
  local n=$1 fn=$2 title=$3
  current="$n $title"
  t_scenario=$(now_ms)
  echo "e2e: [$n] $title"
  if "$fn"; then
    results+=("$(printf 'PASS  %-2s %-62s %s' "$n" "$title" "$(since "$t_scenario")")")
  else
    failures=$((failures + 1))
    results+=("$(printf 'FAIL  %-2s %-62s %s' "$n" "$title" "$(since "$t_scenario")")")
  fi
}

# ---- helpers
ld() { kc -n "$NS" get llmdeployment "$1" -o jsonpath="$2"; }
# equals VALUE COMMAND...: COMMAND succeeds and prints VALUE; matches REGEX COMMAND...; prints_nothing COMMAND...
equals() { local out; out=$("${@:2}" 2>/dev/null) && [[ $out == "$1" ]]; }
matches() { local out; out=$("${@:2}" 2>/dev/null) && [[ $out =~ $1 ]]; }
prints_nothing() { local out; out=$("$@" 2>/dev/null) && [[ -z $out ]]; }
condition() { ld "$1" "{.status.conditions[?(@.type==\"$2\")].${3:-status}}"; }
ld_ready() { [[ $(ld "$1" '{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
ld_ready_replicas() { [[ $(ld "$1" '{.status.readyReplicas}') == "$2" ]]; }
svc_ip() { kc -n "$NS" get service "$1" -o jsonpath='{.spec.clusterIP}'; }
# forward TARGET PORT: the local port of a kubectl port-forward to TARGET (started again when it has ended, as it
# does when its pod goes).
forward() {
  local f=$FORWARDS/${1//\//_}-$2 port
  if [[ -f $f.pid && -s $f.port ]] && kill -0 "$(cat "$f.pid")" 2>/dev/null; then
    cat "$f.port"
    return
  fi
  rm -f "$f.port"
  kc -n "$NS" port-forward --address 127.0.0.1 "$1" ":$2" >"$f.log" 2>&1 &
  echo $! >"$f.pid"
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$f.log" | head -n 1)
    [[ -n $port ]] && { echo "$port" >"$f.port"; echo "$port"; return; }
    kill -0 "$(cat "$f.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "kubectl port-forward $1 failed: $(tail -n 1 "$f.log")" >&2
  return 1
}
# svc_url SERVICE: where the Service answers: its ClusterIP through kube-proxy, or a port-forward (EXTERNAL).
svc_url() {
  if [[ $EXTERNAL == 1 ]]; then
    echo "http://127.0.0.1:$(forward "service/$1" 80)"
  else
    echo "http://$(svc_ip "$1")"
  fi
}
host_pods() { kc -n "$NS" get pods -l "$HOST_SELECTOR" -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.uid}{"\n"}{end}' | sort; }
host_ip() { kc -n "$NS" get pods -l "$HOST_SELECTOR" -o jsonpath='{.items[0].status.podIP}'; }
host_url() {
  if [[ $EXTERNAL == 1 ]]; then
    echo "http://127.0.0.1:$(forward "pod/$(kc -n "$NS" get pods -l "$HOST_SELECTOR" -o jsonpath='{.items[0].metadata.name}')" 8080)"
  else
    echo "http://$(host_ip):8080"
  fi
}
metric() { curl -sS -m 10 "$(host_url)/q/metrics" | awk -v m="$1" '$1 == m { printf "%d\n", $2 }'; }
# store_put FILE NAME [CLAIM]: a model file into the store: the volume's node directory, or (EXTERNAL) through a
# loader pod that mounts the claim (kubectl cp).
store_put() {
  local claim=${3:-model-store} pod
  if [[ $EXTERNAL != 1 ]]; then
    install -o 10001 -g 10001 -m 0644 "$1" "$STORE/$2"
    return
  fi
  pod=e2e-loader-$claim
  if ! kc -n "$NS" get pod "$pod" >/dev/null 2>&1; then
    kc apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: $pod, namespace: $NS, labels: {stowage-e2e: loader}}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: loader
      image: $RUNTIME_IMAGE
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      volumeMounts: [{name: store, mountPath: /store}]
  volumes: [{name: store, persistentVolumeClaim: {claimName: $claim}}]
EOF
    kc -n "$NS" wait --for=condition=Ready "pod/$pod" --timeout=300s >/dev/null || return 1
  fi
  kc -n "$NS" cp "$1" "$pod:/store/$2" >/dev/null
}
save_operator_logs() {
  local p
  for p in $(kc -n "$OP_NS" get pods -l app.kubernetes.io/name=stowage-operator -o name 2>/dev/null); do
    kc -n "$OP_NS" logs "$p" >"$OP_LOGS/${p#pod/}.log" 2>/dev/null || true
  done
}
# complete SERVICE PROMPT N: the greedy completion's text through the Service's ClusterIP.
complete() {
  curl -sS -m 60 --fail-with-body "$(svc_url "$1")/v1/completions" -H 'content-type: application/json' \
    -d "$(jq -n --arg m "$1" --arg p "$2" --argjson n "$3" '{model: $m, prompt: $p, max_tokens: $n, temperature: 0}')" \
    | jq -er '.choices[0].text'
}
golden_text() { jq -r .generated_text "$GOLDEN"; }
# has_ready_endpoint SERVICE: its EndpointSlices list a ready address. A deployment's Ready condition is written
# when its host reports the replica ready; the endpoint follows through the EndpointSlice controller and
# kube-proxy a moment later, so requests right after Ready wait for it (bounded).
has_ready_endpoint() {
  [[ -n $(kc -n "$NS" get endpointslices -l "kubernetes.io/service-name=$1" \
    -o jsonpath='{.items[*].endpoints[?(@.conditions.ready==true)].addresses[*]}' 2>/dev/null) ]]
}
serves_golden() { [[ $(complete "$1" "$(jq -r .prompt "$GOLDEN")" "$(jq -r .n_generated "$GOLDEN")") == "$(golden_text)" ]]; }
assert_serves_golden() {
  local got
  got=$(complete "$1" "$(jq -r .prompt "$GOLDEN")" "$(jq -r .n_generated "$GOLDEN")") \
    || { fail "completion through Service $1 failed: $got"; return 1; }
  [[ $got == "$(golden_text)" ]] || { fail "Service $1 answered '$got', expected the golden '$(golden_text)'"; return 1; }
  step "Service $1 ($(svc_url "$1")) answers the golden greedy text: '${got:0:60}…'"
}
# deployment NAME FILE [REPLICAS]: an LlmDeployment of a file in the model store, on the CPU.
deployment() {
  kc apply -f - <<EOF
apiVersion: stowage.io/v1alpha1
kind: LlmDeployment
metadata: {name: $1, namespace: $NS}
spec:
  model: {uri: "pvc://model-store/$2"}
  replicas: ${3:-1}
  context: {maxTokens: 256, maxSequences: 2}
  placement: {device: cpu}
EOF
}

# ---- 1
s1_install() {
  local t0 forbidden
  # The model store: a PersistentVolume of ours (the node has no provisioner) bound to the example's claim; on
  # your own cluster, the default StorageClass's.
  [[ $EXTERNAL == 1 ]] || { mkdir -p "$STORE" && chown 10001:10001 "$STORE" && chmod 0755 "$STORE"; } || { fail "no model store"; return 1; }
  [[ $EXTERNAL == 1 ]] || kc apply -f - >/dev/null <<EOF || { fail "the model-store PersistentVolume was refused"; return 1; }
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-model-store}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $NS, name: model-store}
  hostPath: {path: $STORE, type: Directory}
EOF
  # Fresh namespaces under Pod Security "restricted" (scenario 9 relies on it).
  kc create namespace "$OP_NS" >/dev/null || { fail "namespace $OP_NS exists already: the cluster is not fresh"; return 1; }
  kc label namespace "$OP_NS" "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
  t0=$(now_ms)
  helm install "$RELEASE" "$ROOT/helm/stowage" -n "$OP_NS" --wait --timeout 5m \
    --set "image.repository=${OPERATOR_IMAGE%:*},image.tag=${OPERATOR_IMAGE##*:},image.pullPolicy=$PULL" \
    --set "runtimeImage.repository=${RUNTIME_IMAGE%:*},runtimeImage.tag=${RUNTIME_IMAGE##*:},runtimeImage.pullPolicy=$PULL" \
    --set cpuFraction=0.5 >"$CLUSTER_RUN/logs/helm-install.log" 2>&1 \
    || { fail "helm install failed: $(tail -n 3 "$CLUSTER_RUN/logs/helm-install.log")"; return 1; }
  step "helm install: the chart and its CRD installed, the operator Ready ($(since "$t0"))"
  kc get crd llmdeployments.stowage.io -o jsonpath='{.metadata.labels}' >/dev/null || { fail "the CRD is not there"; return 1; }
  [[ $(kc -n "$OP_NS" get deploy stowage-operator -o jsonpath='{.spec.template.spec.serviceAccountName}') == stowage-operator ]] \
    || { fail "the operator does not run under the chart's ServiceAccount"; return 1; }
  wait_until "the operator holds the leader lease" 60 \
    matches . kc -n "$OP_NS" get lease stowage-operator-lease -o jsonpath='{.spec.holderIdentity}' || return 1
  sleep 3   # a renewal of the lease (every 2 s) has happened
  forbidden=$(kc -n "$OP_NS" logs deploy/stowage-operator | grep -c 'code=403\|is forbidden\|HTTP 403' || true)
  ((forbidden == 0)) || { fail "the operator's log shows $forbidden lines with 403"; return 1; }
  step "the operator's log shows no 403"
}

# ---- 2
s2_serve() {
  local t0 row chat events
  awk '/^---/ { exit } { print }' "$ROOT/examples/k8s/model-store.yaml" | kc apply -f - >/dev/null \
    || { fail "the claim of examples/k8s/model-store.yaml was refused"; return 1; }
  store_put "$MODELS/stories260K-q8_0.gguf" stories260K-q8_0.gguf || { fail "could not fill the model store"; return 1; }
  wait_until "claim model-store bound to the model store" 60 \
    equals Bound kc -n "$NS" get pvc model-store -o jsonpath='{.status.phase}' || return 1
  t0=$(now_ms)
  kc apply -f "$ROOT/examples/k8s/cpu-serving.yaml" >/dev/null || { fail "kubectl apply -f examples/k8s/cpu-serving.yaml was refused"; return 1; }
  kc -n "$NS" wait --for=condition=Ready llmdeployment/stories-cpu --timeout=240s >/dev/null \
    || { fail "kubectl wait --for=condition=Ready llmdeployment/stories-cpu timed out"; return 1; }
  step "kubectl wait --for=condition=Ready llmdeployment/stories-cpu ($(since "$t0"))"
  row=$(kc -n "$NS" get llmdeployments stories-cpu --no-headers)
  step "kubectl get llmdeployments: $row"
  [[ $(awk '{print NF}' <<<"$row") -ge 9 && $row != *"<none>"* && $row == *" 1/1 "*" Ready "* ]] \
    || { fail "the printer columns are not all filled: '$row'"; return 1; }
  events=$(kc -n "$NS" describe llmdeployment stories-cpu | sed -n '/^Events:/,$p')
  grep -q 'Normal  *Placed ' <<<"$events" || { fail "kubectl describe shows no Placed event: $events"; return 1; }
  step "kubectl describe shows the Events: $(grep -m1 Placed <<<"$events" | tr -s ' ')"
  wait_until "the Service has a ready endpoint" 30 has_ready_endpoint stories-cpu || return 1
  assert_serves_golden stories-cpu || return 1
  chat=$(curl -sS -m 60 --fail-with-body "$(svc_url stories-cpu)/v1/chat/completions" -H 'content-type: application/json' \
    -d '{"model":"stories-cpu","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":24,"temperature":0}') \
    || { fail "the chat completion failed: $chat"; return 1; }
  jq -e '.choices[0].message.content | length > 0' <<<"$chat" >/dev/null && jq -e '.usage.completion_tokens == 24' <<<"$chat" >/dev/null \
    || { fail "unexpected chat completion: $chat"; return 1; }
  step "a chat completion through the Service: $(jq -c '{content: .choices[0].message.content, finish: .choices[0].finish_reason}' <<<"$chat")"
}

# ---- 3
s3_scale() {
  local weights kv1 kv2 hosts
  weights=$(metric stowage_model_bytes) kv1=$(metric stowage_kv_reserved_bytes)
  kc -n "$NS" scale llmdeployment stories-cpu --replicas 2 >/dev/null || { fail "kubectl scale --replicas 2 was refused"; return 1; }
  [[ $(kc -n "$NS" get llmdeployment stories-cpu -o jsonpath='{.spec.replicas}') == 2 ]] || { fail "the scale subresource did not set spec.replicas"; return 1; }
  wait_until "two replicas ready" 120 ld_ready_replicas stories-cpu 2 || return 1
  hosts=$(host_pods | wc -l)
  ((hosts == 1)) || { fail "$hosts host pods for one CPU device"; return 1; }
  kv2=$(metric stowage_kv_reserved_bytes)
  [[ $(metric stowage_model_bytes) == "$weights" ]] || { fail "the host's weights went from $weights to $(metric stowage_model_bytes) bytes: not one copy"; return 1; }
  ((kv2 == 2 * kv1)) || { fail "the host's KV went from $kv1 to $kv2 bytes, expected twice"; return 1; }
  step "two replicas on one host: weights $weights bytes once (stowage_model_bytes), KV $kv1 -> $kv2 bytes"
  [[ $(kc -n "$NS" get llmdeployment stories-cpu -o jsonpath='{.status.replicas}') == 2 ]] || { fail "status.replicas (the scale subresource's) is not 2"; return 1; }
  kc -n "$NS" scale llmdeployment stories-cpu --replicas 0 >/dev/null || { fail "kubectl scale --replicas 0 was refused"; return 1; }
  scaled_to_zero() {
    prints_nothing kc -n "$NS" get endpointslices -l kubernetes.io/service-name=stories-cpu -o jsonpath='{.items[*].endpoints[*].addresses[*]}' \
      && equals 0 ld stories-cpu '{.status.readyReplicas}'
  }
  wait_until "scaled to 0: no replica, the Service without endpoints" 120 \
    scaled_to_zero || return 1
  kc -n "$NS" scale llmdeployment stories-cpu --replicas 1 >/dev/null || { fail "kubectl scale --replicas 1 was refused"; return 1; }
  wait_until "back to one replica" 120 ld_ready_replicas stories-cpu 1 || return 1
  wait_until "the Service serves again" 60 serves_golden stories-cpu || return 1
}

# ---- 4
s4_second_model() {
  local probe_pid errors=0 requests=0 t0
  python3 "$CLUSTER_DIR/nan-gguf.py" "$MODELS/stories260K-f32.gguf" "$CLUSTER_RUN/stories260K-nan.gguf" >/dev/null \
    && store_put "$MODELS/stories260K-f32.gguf" stories260K-f32.gguf \
    && store_put "$CLUSTER_RUN/stories260K-nan.gguf" stories260K-nan.gguf || { fail "could not fill the model store"; return 1; }
  # The first model is asked all along, in the background; every answer must be the golden text.
  (
    while [[ ! -f $CLUSTER_RUN/s4.stop ]]; do
      ready=$(kc -n "$NS" get endpointslices -l kubernetes.io/service-name=stories-cpu \
        -o jsonpath='{.items[*].endpoints[?(@.conditions.ready==true)].addresses[*]}' 2>/dev/null)
      [[ -n $ready ]] || echo "error $(date +%T) the Service stories-cpu has no ready endpoint"
      if out=$(complete stories-cpu "$(jq -r .prompt "$GOLDEN")" "$(jq -r .n_generated "$GOLDEN")" 2>&1) && [[ $out == "$(golden_text)" ]]; then
        echo ok
      else
        echo "error $(date +%T) ${out:0:120}"
      fi
      sleep 0.2
    done >"$CLUSTER_RUN/s4.log"
  ) &
  probe_pid=$!
  t0=$(now_ms)
  deployment stories-f32 stories260K-f32.gguf >/dev/null || { touch "$CLUSTER_RUN/s4.stop"; fail "stories-f32 was refused"; return 1; }
  wait_until "a second model (stories-f32) Ready on the same host" 240 ld_ready stories-f32 || { touch "$CLUSTER_RUN/s4.stop"; return 1; }
  [[ $(host_pods | wc -l) == 1 ]] || { touch "$CLUSTER_RUN/s4.stop"; fail "the second model did not go to the same host"; return 1; }
  wait_until "stories-f32 answers the golden text" 30 serves_golden stories-f32 || { touch "$CLUSTER_RUN/s4.stop"; return 1; }
  # A third model that loads and then fails: every step of it gives NaN logits.
  deployment stories-nan stories260K-nan.gguf >/dev/null || { touch "$CLUSTER_RUN/s4.stop"; fail "stories-nan was refused"; return 1; }
  wait_until "a failing model (stories-nan) loaded on the same host" 240 ld_ready stories-nan || { touch "$CLUSTER_RUN/s4.stop"; return 1; }
  for _ in 1 2 3 4; do complete stories-nan "Once upon a time" 4 >/dev/null 2>&1 || true; done
  wait_until "stories-nan reported failed (condition Degraded)" 120 \
    equals True condition stories-nan Degraded \
    || { touch "$CLUSTER_RUN/s4.stop"; return 1; }
  sleep 20   # two placement passes with the failed model on the host
  touch "$CLUSTER_RUN/s4.stop"
  wait "$probe_pid"
  rm -f "$CLUSTER_RUN/s4.stop"
  requests=$(grep -c '^ok$' "$CLUSTER_RUN/s4.log" || true) errors=$(grep -c '^error' "$CLUSTER_RUN/s4.log" || true)
  ((requests > 0 && errors == 0)) \
    || { fail "stories-cpu: $errors errors beside $requests good answers while the second model loaded and the third failed; first: $(grep -m 3 error "$CLUSTER_RUN/s4.log" | tr '\n' ';')"; return 1; }
  step "stories-cpu answered $requests of $requests requests with the golden text, and its Service kept a ready endpoint, while stories-f32 loaded and stories-nan failed ($(since "$t0"))"
  ld_ready stories-cpu && ld_ready stories-f32 || { fail "a failing model took the others' readiness"; return 1; }
  kc -n "$NS" delete llmdeployment stories-nan --wait=true >/dev/null
}

# ---- 5
s5_bad_specs() {
  local bad=0 name spec expect out
  while IFS='|' read -r name spec expect; do
    [[ -z $name ]] && continue
    out=$(kc apply --dry-run=server -f - 2>&1 <<EOF
{"apiVersion":"stowage.io/v1alpha1","kind":"LlmDeployment","metadata":{"name":"bad-$name","namespace":"$NS"},"spec":$spec}
EOF
    ) && { fail "the API server accepted bad spec '$name': $spec"; bad=1; continue; }
    if [[ $out != *"$expect"* ]]; then
      fail "bad spec '$name' was refused with '$out', expected a message containing '$expect'"
      bad=1
      continue
    fi
    out=$(tr '\n' ' ' <<<"${out#*is invalid: }" | tr -s ' ')
    step "refused ($name): ${out:0:160}"
  done <<'EOF'
uri-scheme|{"model":{"uri":"ftp://models/x.gguf"}}|model.uri must start with https://, http://, file://, pvc://, s3:// or hf://
no-model|{"replicas":1}|spec.model: Required value
no-uri|{"model":{"sha256":"a5eec7f42c2234ec2a615d92ad083abcec38788b2d415802bc089dffaba9a5a7"}}|spec.model.uri: Required value
negative-replicas|{"model":{"uri":"pvc://model-store/x.gguf"},"replicas":-1}|spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0
replicas-type|{"model":{"uri":"pvc://model-store/x.gguf"},"replicas":"two"}|spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer
sha256|{"model":{"uri":"pvc://model-store/x.gguf","sha256":"abc"}}|spec.model.sha256 in body should match '^[a-f0-9]{64}$'
kv-type|{"model":{"uri":"pvc://model-store/x.gguf"},"context":{"kvCacheType":"int4"}}|spec.context.kvCacheType: Unsupported value: "int4"
max-tokens|{"model":{"uri":"pvc://model-store/x.gguf"},"context":{"maxTokens":0}}|spec.context.maxTokens in body should be greater than or equal to 1
device|{"model":{"uri":"pvc://model-store/x.gguf"},"placement":{"device":"tpu"}}|spec.placement.device: Unsupported value: "tpu"
compute-share|{"model":{"uri":"pvc://model-store/x.gguf"},"placement":{"computeShare":2}}|spec.placement.computeShare in body should be less than or equal to 1
toleration|{"model":{"uri":"pvc://model-store/x.gguf"},"placement":{"tolerations":[{"key":"k","effect":"Sometimes"}]}}|spec.placement.tolerations[0].effect in body should match
EOF
  ((bad == 0))
}

# ---- 6
s6_unprobeable() {
  local reason phase
  deployment stories-missing stories260K-later.gguf >/dev/null || { fail "stories-missing was refused"; return 1; }
  wait_until "a missing model file ends in a condition with its reason" 180 \
    matches '^(ModelUnreadable|InvalidModel)$' condition stories-missing Placed reason || return 1
  reason=$(ld stories-missing '{.status.conditions[?(@.type=="Placed")].reason}: {.status.conditions[?(@.type=="Placed")].message}')
  phase=$(ld stories-missing '{.status.phase}')
  [[ $phase != Inspecting ]] || { fail "stories-missing is still Inspecting"; return 1; }
  step "stories-missing: phase $phase, $reason"
  store_put "$MODELS/stories260K-q8_0.gguf" stories260K-later.gguf || { fail "could not fill the model store"; return 1; }
  wait_until "stories-missing recovers once the file is there" 300 ld_ready stories-missing || return 1
  wait_until "stories-missing serves the golden text" 30 serves_golden stories-missing || return 1
  kc -n "$NS" delete llmdeployment stories-missing --wait=true >/dev/null
  # A claim that does not exist: the probe pod can never be scheduled.
  kc apply -f - >/dev/null <<EOF || { fail "stories-noclaim was refused"; return 1; }
apiVersion: stowage.io/v1alpha1
kind: LlmDeployment
metadata: {name: stories-noclaim, namespace: $NS}
spec:
  model: {uri: "pvc://no-such-claim/stories260K-q8_0.gguf"}
  placement: {device: cpu}
EOF
  wait_until "a probe that cannot be scheduled ends in a condition with its reason" 300 \
    equals ModelUnreadable condition stories-noclaim Placed reason || return 1
  phase=$(ld stories-noclaim '{.status.phase}')
  [[ $phase != Inspecting ]] || { fail "stories-noclaim is still Inspecting"; return 1; }
  step "stories-noclaim: phase $phase, $(ld stories-noclaim '{.status.conditions[?(@.type=="Placed")].reason}: {.status.conditions[?(@.type=="Placed")].message}')"
  # Fixed: the claim appears (bound to a second volume on the same directory; on your own cluster, a claim of the
  # default StorageClass that the loader pod fills).
  if [[ $EXTERNAL == 1 ]]; then
    kc apply -f - >/dev/null <<EOF || { fail "the claim no-such-claim was refused"; return 1; }
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: no-such-claim, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOF
    store_put "$MODELS/stories260K-q8_0.gguf" stories260K-q8_0.gguf no-such-claim || { fail "could not fill no-such-claim"; return 1; }
  else
    kc apply -f - >/dev/null <<EOF || { fail "the claim no-such-claim was refused"; return 1; }
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-model-store-2}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $NS, name: no-such-claim}
  hostPath: {path: $STORE, type: Directory}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: no-such-claim, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: e2e-model-store-2
  resources: {requests: {storage: 1Gi}}
EOF
  fi
  wait_until "stories-noclaim recovers once its claim exists" 420 ld_ready stories-noclaim || return 1
  wait_until "stories-noclaim serves the golden text" 30 serves_golden stories-noclaim || return 1
  kc -n "$NS" delete llmdeployment stories-noclaim --wait=true >/dev/null
  kc -n "$NS" delete pvc no-such-claim --wait=false >/dev/null
}

# ---- 7
s7_restarts() {
  local before after old new services secrets deployments
  before=$(host_pods)
  save_operator_logs
  old=$(kc -n "$OP_NS" get pods -l app.kubernetes.io/name=stowage-operator -o jsonpath='{.items[0].metadata.name}')
  new_leader_ready() {
    local n
    n=$(kc -n "$OP_NS" get lease stowage-operator-lease -o jsonpath='{.spec.holderIdentity}') \
      && [[ -n $n && $n != "$1" ]] && kc -n "$OP_NS" wait --for=condition=Ready "pod/$n" --timeout=1s
  }
  # Mid-reconcile: a change, and the operator's pod deleted right after it.
  kc -n "$NS" scale llmdeployment stories-f32 --replicas 2 >/dev/null || { fail "kubectl scale was refused"; return 1; }
  kc -n "$OP_NS" delete pod "$old" --wait=false >/dev/null || { fail "could not delete the operator's pod"; return 1; }
  wait_until "a new operator pod Ready and holding the lease" 180 \
    new_leader_ready "$old" || return 1
  wait_until "the change converged under the new leader" 180 ld_ready_replicas stories-f32 2 || return 1
  after=$(host_pods)
  [[ $after == "$before" ]] || { fail "host pods changed across the operator's restart: before [$before] after [$after]"; return 1; }
  services=$(kc -n "$NS" get services -l "$MANAGED" --no-headers | wc -l)
  deployments=$(kc -n "$NS" get llmdeployments --no-headers | wc -l)
  secrets=$(kc -n "$NS" get secrets --no-headers | awk '$1 == "stowage-admin-token"' | wc -l)
  ((services == deployments && secrets == 1)) \
    || { fail "$services Services for $deployments LlmDeployments and $secrets token Secrets after the restart (expected one each)"; return 1; }
  step "nothing moved (host pods $(wc -l <<<"$after"), same UIDs), nothing duplicated ($services Services, $secrets token Secret)"
  # A host pod deleted: it comes back and serves.
  new=$(host_pods | head -n 1 | cut -d= -f1)
  kc -n "$NS" delete pod "$new" --wait=true >/dev/null || { fail "could not delete host pod $new"; return 1; }
  both_ready() { ld_ready stories-cpu && ld_ready stories-f32; }
  wait_until "the host pod back and both deployments Ready" 240 both_ready || return 1
  wait_until "stories-cpu serves again" 60 serves_golden stories-cpu || return 1
  [[ $(host_pods) != "$before" ]] || { fail "the host pod was not replaced"; return 1; }
}

# ---- 8
s8_delete() {
  local left
  save_operator_logs
  kc -n "$NS" delete pods -l stowage-e2e=loader --wait=true >/dev/null   # EXTERNAL's loader pods
  kc -n "$NS" delete llmdeployments --all --wait=true --timeout=180s >/dev/null || { fail "kubectl delete llmdeployments timed out"; return 1; }
  all_gone() {
    prints_nothing kc -n "$NS" get pods,services,secrets,endpointslices,poddisruptionbudgets -l "$MANAGED" -o name \
      && prints_nothing kc -n "$NS" get pods -o name
  }
  wait_until "hosts, probes, Services, Secrets and the budget gone" 120 \
    all_gone || return 1
  left=$(kc -n "$NS" get all,secrets,configmaps,endpointslices,events -o name 2>/dev/null | grep -v -e '^service/kubernetes$' -e '^endpointslice.discovery.k8s.io/kubernetes$' -e '^configmap/kube-root-ca.crt$' -e '^event' || true)
  [[ -z $left ]] || { fail "left in namespace $NS after the delete: $(tr '\n' ' ' <<<"$left")"; return 1; }
  step "nothing left in namespace $NS but the cluster's own objects and Events"
}

# ---- 9
s9_restricted() {
  local pods bad=0 p spec
  [[ $(kc get namespace "$OP_NS" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted \
    && $(kc get namespace "$NS" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted ]] \
    || { fail "the namespaces are not labelled enforce=restricted"; return 1; }
  deployment stories-last stories260K-q8_0.gguf >/dev/null && wait_until "a host under restricted" 240 ld_ready stories-last || return 1
  pods=$(kc get pods -n "$OP_NS" -o name; kc get pods -n "$NS" -o name)
  for p in $pods; do
    ns=$OP_NS; [[ $(kc -n "$OP_NS" get "$p" -o name 2>/dev/null) ]] || ns=$NS
    spec=$(kc -n "$ns" get "$p" -o json)
    jq -e '(.spec.securityContext.runAsNonRoot == true) and ([.spec.containers[] | .securityContext.readOnlyRootFilesystem == true and .securityContext.allowPrivilegeEscalation == false] | all)' <<<"$spec" >/dev/null \
      || { fail "$ns/$p is not non-root with a read-only root file system: $(jq -c '[.spec.securityContext, [.spec.containers[].securityContext]]' <<<"$spec")"; bad=1; continue; }
    uid=$(kc -n "$ns" exec "${p#pod/}" -- id -u 2>&1) && [[ $uid != 0 ]] || { fail "$ns/$p: id -u says '$uid'"; bad=1; continue; }
    if kc -n "$ns" exec "${p#pod/}" -- sh -c 'echo x > /stowage-e2e-write' >/dev/null 2>&1; then fail "$ns/$p could write to its root file system"; bad=1; continue; fi
    step "$ns/${p#pod/}: uid $uid, root file system read-only, admitted under restricted"
  done
  kc -n "$NS" delete llmdeployment stories-last --wait=true >/dev/null
  ((bad == 0))
}

# ---- 10
s10_cordon() {
  local node before out owners
  node=$(kc get nodes -o jsonpath='{.items[0].metadata.name}') && [[ -n $node ]] || { fail "no node"; return 1; }
  before=$(host_pods)
  [[ -n $before ]] || { fail "no host pod to keep serving (run scenario 7 first)"; return 1; }
  equals 0 kc -n "$NS" get poddisruptionbudget stowage-hosts -o jsonpath='{.spec.maxUnavailable}' \
    || { fail "no PodDisruptionBudget stowage-hosts with maxUnavailable 0 in $NS"; return 1; }
  owners=$(kc -n "$NS" get pods -l "$HOST_SELECTOR" -o json \
    | jq -r '[.items[] | [.metadata.ownerReferences[] | select(.controller == true)] | length] | unique | join(",")')
  [[ $owners == 1 ]] || { fail "host pods do not have exactly one controlling owner (counts: $owners)"; return 1; }
  step "budget stowage-hosts (maxUnavailable 0); every host pod has one controller"
  kc cordon "$node" >/dev/null || { fail "kubectl cordon $node was refused"; return 1; }
  # Whatever happens below, the node is uncordoned again for the scenarios after this one.
  s10_check() {
    blocked() { [[ $(condition stories-cpu Degraded reason) == MoveBlocked ]]; }
    wait_until "stories-cpu says its replica stays on the cordoned node (there is no other)" 60 blocked || return 1
    [[ $(host_pods) == "$before" ]] || { fail "host pods changed on cordon: before [$before] after [$(host_pods)]"; return 1; }
    ld_ready stories-cpu || { fail "stories-cpu is not Ready on the cordoned node"; return 1; }
    assert_serves_golden stories-cpu || return 1
    out=$(kc drain "$node" --pod-selector="$HOST_SELECTOR" --delete-emptydir-data --ignore-daemonsets --timeout=20s 2>&1) \
      && { fail "kubectl drain evicted a serving host: $out"; return 1; }
    [[ $out != *"declare no controller"* ]] || { fail "kubectl drain wants --force: $out"; return 1; }
    [[ $out == *"disruption budget"* ]] || { fail "kubectl drain failed, but not on the budget: $out"; return 1; }
    [[ $(host_pods) == "$before" ]] || { fail "host pods changed on drain: before [$before] after [$(host_pods)]"; return 1; }
    step "kubectl drain (no --force) refused by the budget; the hosts stay"
  }
  s10_check; local rc=$?
  kc uncordon "$node" >/dev/null || { fail "kubectl uncordon $node was refused"; return 1; }
  ((rc == 0)) || return 1
  wait_until "Degraded clears once the node is uncordoned" 60 equals False condition stories-cpu Degraded || return 1
  [[ $(host_pods) == "$before" ]] || { fail "host pods changed on uncordon: before [$before] after [$(host_pods)]"; return 1; }
  assert_serves_golden stories-cpu
}

# ---- 11
# scaled_deployment NAME FILE: an LlmDeployment that scales to zero after 5 s idle, on the CPU.
scaled_deployment() {
  kc apply -f - <<EOF
apiVersion: stowage.io/v1alpha1
kind: LlmDeployment
metadata: {name: $1, namespace: $NS}
spec:
  model: {uri: "pvc://model-store/$2"}
  replicas: 1
  context: {maxTokens: 256, maxSequences: 256}
  placement: {device: cpu}
  scaling: {minReplicas: 0, idleTimeout: 5s}
EOF
}
phase_is() { equals "$2" ld "$1" '{.status.phase}'; }
# timed_golden SERVICE: the golden completion through the Service; prints its milliseconds.
timed_golden() {
  local t0 got
  t0=$(now_ms)
  got=$(complete "$1" "$(jq -r .prompt "$GOLDEN")" "$(jq -r .n_generated "$GOLDEN")") || { echo "failed: $got"; return 1; }
  [[ $got == "$(golden_text)" ]] || { echo "answered '$got'"; return 1; }
  echo $(($(now_ms) - t0))
}
# bytes QUANTITY: a Kubernetes memory quantity (Ki, Mi, Gi or plain) in bytes.
bytes() { numfmt --from=auto "$1"; }
s11_scale_to_zero() {
  local ms reclaim alloc o w kv ws fraction rc
  # Run alone (./stowage test --cluster 11): the chart first, as scenario 1 installs it.
  if ! helm status "$RELEASE" -n "$OP_NS" >/dev/null 2>&1; then
    step "the chart is not installed: scenario 1 first"
    s1_install || return 1
  fi
  awk '/^---/ { exit } { print }' "$ROOT/examples/k8s/model-store.yaml" | kc apply -f - >/dev/null \
    && store_put "$MODELS/stories260K-q8_0.gguf" stories-idle-a.gguf \
    && store_put "$MODELS/stories260K-q8_0.gguf" stories-idle-b.gguf || { fail "could not fill the model store"; return 1; }
  wait_until "claim model-store bound" 60 equals Bound kc -n "$NS" get pvc model-store -o jsonpath='{.status.phase}' || return 1
  scaled_deployment idle-a stories-idle-a.gguf >/dev/null || { fail "idle-a was refused"; return 1; }
  kc -n "$NS" wait --for=condition=Ready llmdeployment/idle-a --timeout=240s >/dev/null || { fail "idle-a not Ready"; return 1; }
  # kube-proxy programs the new Service's endpoint a moment after the EndpointSlice (bounded wait, as scenario 3)
  wait_until "idle-a Ready and its Service answers the golden text" 60 serves_golden idle-a || return 1
  wait_until "idle-a released after 5 s idle: phase Idle" 60 phase_is idle-a Idle || return 1
  reclaim=$(ld idle-a '{.status.scaling.reclaimableBytes}')
  ((reclaim > 0)) || { fail "idle-a is Idle with reclaimable bytes '$reclaim'"; return 1; }
  equals 0 ld idle-a '{.status.readyReplicas}' || { fail "idle-a is Idle with ready replicas"; return 1; }
  [[ $(metric stowage_scaling_idle_deployments) == 1 ]] || { fail "the host's stowage_scaling_idle_deployments is '$(metric stowage_scaling_idle_deployments)'"; return 1; }
  has_ready_endpoint idle-a || { fail "the Service idle-a lost its endpoint while idle"; return 1; }
  step "idle-a Idle: $(ld idle-a '{.status.scaling.reclaimable}') reclaimable, the host says 1 idle deployment, the Service keeps its endpoint"
  ms=$(timed_golden idle-a) || { fail "the request that re-activates idle-a: $ms"; return 1; }
  step "a request through the Service re-activated idle-a and got the golden text in ${ms} ms"
  wait_until "idle-a Idle again" 60 phase_is idle-a Idle || return 1

  # Memory pressure: the CPU device shrunk to the host's fixed cost and one and a half such deployments.
  alloc=$(bytes "$(kc get nodes -o jsonpath='{.items[0].status.allocatable.memory}')")
  o=$(ld idle-a '{.status.memory.overheadBytes}') w=$(ld idle-a '{.status.memory.weightsBytes}')
  kv=$(ld idle-a '{.status.memory.kvPerReplicaBytes}') ws=$(ld idle-a '{.status.memory.workspaceBytes}')
  fraction=$(awk -v a="$alloc" -v o="$o" -v w="$w" -v k="$kv" -v s="$ws" 'BEGIN { printf "%.9f", (o + s + 1.5 * (w + k)) / a }')
  save_operator_logs   # the restart below replaces the operator's pod: its log is kept for the 403 check
  helm upgrade "$RELEASE" "$ROOT/helm/stowage" -n "$OP_NS" --reuse-values --wait --timeout 5m --set "cpuFraction=$fraction" \
    >"$CLUSTER_RUN/logs/helm-upgrade-11.log" 2>&1 || { fail "helm upgrade cpuFraction=$fraction failed: $(tail -n 3 "$CLUSTER_RUN/logs/helm-upgrade-11.log")"; return 1; }
  step "cpuFraction $fraction of $alloc bytes: the CPU device takes $o + $ws + 1.5 x ($w + $kv) bytes"
  # The operator restarts with the new fraction: the old pod must be gone before idle-b comes, or it places it.
  op_pods() { kc -n "$OP_NS" get pods -l app.kubernetes.io/name=stowage-operator -o name | wc -l; }
  wait_until "the operator restarted with it (one operator pod left)" 120 equals 1 op_pods || return 1
  s11_pressure; rc=$?
  kc -n "$NS" delete llmdeployment idle-a idle-b --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1
  helm upgrade "$RELEASE" "$ROOT/helm/stowage" -n "$OP_NS" --reuse-values --wait --timeout 5m --set cpuFraction=0.5 \
    >>"$CLUSTER_RUN/logs/helm-upgrade-11.log" 2>&1 || { fail "helm upgrade back to cpuFraction=0.5 failed"; return 1; }
  return $rc
}
s11_pressure() {
  local ms
  wait_until "idle-a still Idle under the restarted operator" 90 phase_is idle-a Idle || return 1
  scaled_deployment idle-b stories-idle-b.gguf >/dev/null || { fail "idle-b was refused"; return 1; }
  kc -n "$NS" wait --for=condition=Ready llmdeployment/idle-b --timeout=240s >/dev/null || { fail "idle-b not Ready"; return 1; }
  wait_until "idle-a evicted for idle-b: phase Dormant" 60 phase_is idle-a Dormant || return 1
  kc -n "$NS" get events --field-selector reason=IdleEvicted,involvedObject.name=idle-a -o jsonpath='{.items[*].message}' | grep -q "$NS/idle-b#0" \
    || { fail "no IdleEvicted event on idle-a naming $NS/idle-b#0"; return 1; }
  step "IdleEvicted: $(kc -n "$NS" get events --field-selector reason=IdleEvicted,involvedObject.name=idle-a -o jsonpath='{.items[0].message}' | cut -c1-200)"
  has_ready_endpoint idle-a || { fail "the dormant idle-a lost its Service endpoint (its activation point)"; return 1; }
  wait_until "idle-b's Service answers the golden text" 60 serves_golden idle-b || return 1
  wait_until "idle-b Idle" 60 phase_is idle-b Idle || return 1
  ms=$(timed_golden idle-a) || { fail "the request for the dormant idle-a: $ms"; return 1; }
  step "a request for the dormant idle-a was held by its host, placed it again and got the golden text in ${ms} ms"
  wait_until "idle-b evicted for idle-a: phase Dormant" 60 phase_is idle-b Dormant || return 1
  kc -n "$NS" get events --field-selector reason=Activating,involvedObject.name=idle-a -o jsonpath='{.items[*].message}' | grep -q 'held on host' \
    || { fail "no Activating event on idle-a"; return 1; }
  step "$(kc -n "$NS" get llmdeployments idle-a idle-b --no-headers | tr -s ' ' | paste -sd ';')"
}

# ---- the run
t_all=$(now_ms)
if [[ $EXTERNAL == 1 ]]; then
  echo "e2e: on the cluster of $KUBECONFIG ($(kc config current-context)), images $OPERATOR_IMAGE and $RUNTIME_IMAGE; state in $CLUSTER_RUN"
  # What the run made goes at the end; the CRD stays (helm leaves it).
  cleanup_external() {
    kc -n "$NS" delete llmdeployments --all --wait=true --timeout=120s >/dev/null 2>&1
    kc -n "$NS" delete pods -l stowage-e2e=loader --wait=false >/dev/null 2>&1
    kc -n "$NS" delete pvc model-store no-such-claim --wait=false >/dev/null 2>&1
    helm uninstall "$RELEASE" -n "$OP_NS" >/dev/null 2>&1
    kc delete namespace "$OP_NS" --wait=false >/dev/null 2>&1
    for f in "$FORWARDS"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done
    true
  }
  trap cleanup_external EXIT
else
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$CLUSTER_IMAGES/operator.tar" >/dev/null \
    && ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$CLUSTER_IMAGES/runtime.tar" >/dev/null \
    || die "ctr could not import the project's images (run project-images.sh)"
  echo "e2e: the project's images imported into the node's containerd ($(since "$t_all"))"
fi
todo=("$@")
((${#todo[@]})) || todo=(1 2 3 4 5 6 7 10 8 9 11)
for n in "${todo[@]}"; do
  case $n in
    1) run_scenario 1 s1_install "helm install into a fresh cluster, RBAC enforced" ;;
    2) run_scenario 2 s2_serve "cpu-serving.yaml: Ready, columns, Events, golden text" ;;
    3) run_scenario 3 s3_scale "scale subresource: 2 replicas, one weight copy; 0; 1" ;;
    4) run_scenario 4 s4_second_model "second model on the host: the first stays served" ;;
    5) run_scenario 5 s5_bad_specs "bad specs refused by the API server (schema, CEL)" ;;
    6) run_scenario 6 s6_unprobeable "unprobeable sources: clear condition, recovery" ;;
    7) run_scenario 7 s7_restarts "operator and host pods deleted: converge, no moves" ;;
    8) run_scenario 8 s8_delete "kubectl delete: nothing left" ;;
    9) run_scenario 9 s9_restricted "non-root, read-only root, Pod Security restricted" ;;
    10) run_scenario 10 s10_cordon "cordon and drain: the hosts keep serving; uncordon" ;;
    11) run_scenario 11 s11_scale_to_zero "scale to zero: Idle, re-activation, eviction, demand" ;;
    *) die "unknown scenario '$n' (1-11)" ;;
  esac
done
save_operator_logs
forbidden=$(cat "$OP_LOGS"/*.log 2>/dev/null | grep -c 'code=403\|is forbidden\|HTTP 403' || true)
if ((forbidden > 0)); then
  failures=$((failures + 1))
  results+=("FAIL  -  the operators' logs show $forbidden lines with 403 (see $OP_LOGS)")
else
  results+=("PASS  -  no 403 in any operator pod's log over the run")
fi
echo "e2e: results ($(since "$t_all")):"
printf 'e2e:   %s\n' "${results[@]}"
((failures == 0)) || { echo "e2e: $failures failed" >&2; exit 1; }
echo "e2e: all passed"
