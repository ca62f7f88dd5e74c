#!/bin/sh
# Makes a throw-away CA (the openssl CLI, no network) and certificates for the TLS tests in directory $1:
#   ca.crt ca.key        the replica set's CA
#   p.crt p.key          the primary's certificate, signed by ca
#   r1.crt r1.key        a replica's certificate, signed by ca
#   ca2.crt ca2.key      an unrelated CA
#   bad.crt bad.key      a certificate signed by ca2 (the wrong CA)
set -eu
cd "$1"
ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 2 \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
leaf() {  # name ca
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -sha256 -days 2 \
    -out "$1.crt" 2>/dev/null
  rm -f "$1.csr"
}
ca ca
ca ca2
leaf p ca
leaf r1 ca
leaf bad ca2
