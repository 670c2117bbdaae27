#!/usr/bin/env bash
# HTTPS against plain HTTP, same nginx (`return 200`), same recording, one
# script run: the Secure issue's goal is an HTTPS send rate of at least
# 0.8x the plain one (keep-alive connections, one TLS session per lane).
#
#   scripts/bench-tls.sh [ROUNDS]     (default 3 rounds, alternating)
#
# Needs nginx and openssl (Debian); builds medtwin in release. Prints each
# replay's rate, the medians and their ratio; wrk's rates on the same
# ports when wrk is installed (for scale).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
PATH="$PATH:/usr/sbin"
command -v nginx >/dev/null || { echo "error: nginx is required (apt-get install nginx)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "error: openssl is required" >&2; exit 1; }
cargo build --release -p medtwin -q
bin="$(pwd)/target/release/medtwin"
work="$(mktemp -d)"
cleanup() { [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
pin="$(openssl x509 -in "$work/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain="$(free_port)"; tls="$(free_port)"
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat > "$work/nginx.conf" <<CONF
$user
worker_processes 1;
error_log $work/error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi;
  uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$plain; location / { return 200 'ok'; } }
  server { listen 127.0.0.1:$tls ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
           location / { return 200 'ok'; } }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
sleep 0.5

echo "== recording the quickstart's telemetry (virtual clock)"
"$bin" run scenarios/quickstart.toml --clock virtual --quiet --transport file \
  --target "$work/rec.ndjson" --out "$work/rec-report" >/dev/null || true
echo "   $(wc -l < "$work/rec.ndjson") messages"

rate() { sed -n 's/.*(\([0-9]*\) messages\/s).*/\1/p'; }
declare -a http_rates https_rates
for round in $(seq 1 "$rounds"); do
  h=$("$bin" replay "$work/rec.ndjson" --target "http://127.0.0.1:$plain/v1/measurements" | rate)
  s=$("$bin" replay "$work/rec.ndjson" --target "https://127.0.0.1:$tls/v1/measurements" --pin-sha256 "$pin" | rate)
  echo "round $round: http $h msg/s · https $s msg/s"
  http_rates+=("$h"); https_rates+=("$s")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mh=$(median "${http_rates[@]}"); ms=$(median "${https_rates[@]}")
echo "median: http $mh msg/s · https $ms msg/s · https/http = $(awk -v a="$ms" -v b="$mh" 'BEGIN {printf "%.2f", a/b}')"
if command -v wrk >/dev/null; then
  echo "== wrk (8 connections, 5 s, GET) for scale"
  wrk -t2 -c8 -d5s "http://127.0.0.1:$plain/" | grep Requests/sec | sed 's/^/   http  /'
  wrk -t2 -c8 -d5s "https://127.0.0.1:$tls/" | grep Requests/sec | sed 's/^/   https /'
fi
