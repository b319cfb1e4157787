#!/usr/bin/env bash
# Smoke check of a cluster that up.sh started, in a namespace `smoke` under Pod Security
# "restricted": (1) `kubectl run` of a pod from the debootstrap image that prints a line, whose log
# is read back; (2) a Deployment of the httpd image behind a ClusterIP Service, reached from the
# node through kube-proxy. Deletes the namespace at the end. Exits non-zero with the reason.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export KUBECONFIG=$KUBECONFIG_ADMIN
[[ -f $KUBECONFIG ]] || die "no cluster: $KUBECONFIG is missing (run up.sh)"
kc() { "$CLUSTER_BIN/kubectl" "$@"; }
ns=smoke
t0=$(now_ms)
fail() {
  echo "smoke: FAILED: $*" >&2
  kc -n "$ns" get pods -o wide >&2 || true
  kc -n "$ns" get events --sort-by=.lastTimestamp >&2 || true
  exit 1
}
kc delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
kc create namespace "$ns" >/dev/null
kc label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
kc -n "$ns" wait --for=jsonpath='{.metadata.name}'=default serviceaccount/default --timeout=60s >/dev/null \
  || fail "the namespace's default ServiceAccount did not appear"
restricted='"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"runAsGroup":65532,"seccompProfile":{"type":"RuntimeDefault"}}'
ctr_sc='"securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}}'

# (1) a pod that prints a line; its log read back.
t=$(now_ms)
line="hello from stowage-e2e $$"
kc -n "$ns" run hello --image=stowage.local/e2e/debian:trixie --image-pull-policy=Never --restart=Never \
  --overrides="{\"spec\":{$restricted,\"containers\":[{\"name\":\"hello\",\"image\":\"stowage.local/e2e/debian:trixie\",\"imagePullPolicy\":\"Never\",\"command\":[\"/bin/sh\",\"-c\",\"echo '$line'\"],$ctr_sc}]}}" \
  >/dev/null || fail "kubectl run hello was refused"
kc -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/hello --timeout=180s >/dev/null \
  || fail "pod hello did not succeed"
got=$(kc -n "$ns" logs hello) || fail "kubectl logs hello failed"
[[ $got == "$line" ]] || fail "pod hello printed '$got', expected '$line'"
echo "smoke: pod ran and its log reads '$got' ($(since "$t"))"

# (2) a ClusterIP Service reached from the node through kube-proxy.
t=$(now_ms)
kc -n "$ns" apply -f - >/dev/null <<JSON || fail "the httpd Deployment or Service was refused"
{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "httpd"},
   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "httpd"}},
     "template": {"metadata": {"labels": {"app": "httpd"}},
       "spec": {$restricted, "containers": [{"name": "httpd", "image": "stowage.local/e2e/httpd:v1",
         "imagePullPolicy": "Never", "ports": [{"containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}, $ctr_sc}]}}}},
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpd"},
   "spec": {"selector": {"app": "httpd"}, "ports": [{"port": 80, "targetPort": 8080}]}}
]}
JSON
kc -n "$ns" rollout status deployment/httpd --timeout=180s >/dev/null || fail "deployment httpd did not become available"
ip=$(kc -n "$ns" get service httpd -o jsonpath='{.spec.clusterIP}')
pod=$(kc -n "$ns" get pods -l app=httpd -o jsonpath='{.items[0].metadata.name}')
body=""
for ((i = 0; i < 60; i++)); do
  body=$(curl -fsS --max-time 2 "http://$ip/" 2>/dev/null) && break
  sleep 0.5
done
[[ $body == "stowage-e2e $pod" ]] || fail "http://$ip/ (Service httpd) answered '$body', expected 'stowage-e2e $pod'"
echo "smoke: Service httpd at $ip:80 answered '$body' through kube-proxy ($(since "$t"))"

# (3) from a pod: the httpd Service and the API server's `kubernetes` Service, through kube-proxy
# (bash's /dev/tcp; the minbase image has no HTTP client). The pod must have no default route: nothing
# it sends can leave the machine.
t=$(now_ms)
probe="exec 3<>/dev/tcp/$ip/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && tail -n 1 <&3 && exec 3<>/dev/tcp/$SERVICE_IP/443 && echo kubernetes-reachable && if awk 'NR > 1 && \$2 == 0 {f = 1} END {exit !f}' /proc/net/route; then echo has-default-route; else echo no-default-route; fi"
kc -n "$ns" run probe --image=stowage.local/e2e/debian:trixie --image-pull-policy=Never --restart=Never \
  --overrides="{\"spec\":{$restricted,\"containers\":[{\"name\":\"probe\",\"image\":\"stowage.local/e2e/debian:trixie\",\"imagePullPolicy\":\"Never\",\"command\":[\"/bin/bash\",\"-c\",\"$probe\"],$ctr_sc}]}}" \
  >/dev/null || fail "kubectl run probe was refused"
kc -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/probe --timeout=120s >/dev/null \
  || fail "pod probe could not reach the Services (log: $(kc -n "$ns" logs probe 2>&1 | tr '\n' ' '))"
got=$(kc -n "$ns" logs probe | tr '\n' ' ')
[[ $got == "stowage-e2e $pod kubernetes-reachable no-default-route " ]] || fail "pod probe printed '$got'"
echo "smoke: from a pod, Service httpd answered and the kubernetes Service ($SERVICE_IP:443) accepted a connection; the pod has no default route ($(since "$t"))"

# (4) helm installs and uninstalls a one-ConfigMap chart made here.
t=$(now_ms)
chart=$(mktemp -d "${TMPDIR:-/tmp}/stowage-smoke-chart.XXXXXX")
trap 'rm -rf "$chart"' EXIT
mkdir -p "$chart/templates"
printf 'apiVersion: v2\nname: smoke\nversion: 0.1.0\n' >"$chart/Chart.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: smoke-helm\ndata:\n  release: {{ .Release.Name | quote }}\n' >"$chart/templates/cm.yaml"
"$CLUSTER_BIN/helm" install smoke "$chart" -n "$ns" --wait --timeout 60s >/dev/null || fail "helm install failed"
got=$(kc -n "$ns" get configmap smoke-helm -o jsonpath='{.data.release}')
[[ $got == smoke ]] || fail "helm's ConfigMap has release '$got', expected 'smoke'"
"$CLUSTER_BIN/helm" uninstall smoke -n "$ns" --wait >/dev/null || fail "helm uninstall failed"
! kc -n "$ns" get configmap smoke-helm >/dev/null 2>&1 || fail "helm uninstall left ConfigMap smoke-helm"
echo "smoke: helm installed and uninstalled a chart ($(since "$t"))"

kc delete namespace "$ns" --wait=true --timeout=120s >/dev/null || fail "namespace $ns was not deleted"
echo "smoke: passed in $(since "$t0")"
