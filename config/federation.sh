#!/usr/bin/env bash
# Build the example federation of three agencies with the `jol` commands an operator runs:
# the authority (key, CA, manifest), and for each agency its signing key, its TLS key and
# certificate (from a CSR: the private key never leaves the agency's folder), its membership and
# grants, and its node config. Usage:
#   config/federation.sh [OUT_DIR]          (default: config/federation)
# Environment: JOL (the binary, default target/release/jol), MIGRATION_LOCAL, EMPLOYMENT_LOCAL,
# EDUCATION_LOCAL, MIGRATION_PEER, EMPLOYMENT_PEER, EDUCATION_PEER (ports), STORE_ENGINE (redb,
# the default, or sled). `jol demo` and the tests lay out the same federation with the library
# (jol-tools, tools/src/federation.rs); tools/tests/federation.rs runs this script to keep it working.
set -euo pipefail
OUT=${1:-config/federation}
JOL=${JOL:-target/release/jol}
AUTH="$OUT/authority"
declare -A ID=(
  [migration]="central-server/GOV/70000001/migration"
  [employment]="central-server/GOV/70000002/employment"
  [education]="central-server/GOV/70000003/education"
)
declare -A LOCAL=([migration]=${MIGRATION_LOCAL:-8401} [employment]=${EMPLOYMENT_LOCAL:-8402} [education]=${EDUCATION_LOCAL:-8403})
declare -A PEER=([migration]=${MIGRATION_PEER:-8501} [employment]=${EMPLOYMENT_PEER:-8502} [education]=${EDUCATION_PEER:-8503})
declare -A KY=([migration]="Миграция агенттиги" [employment]="Иш менен камсыз кылуу кызматы" [education]="Билим берүү министрлиги")
declare -A RU=([migration]="Агентство по миграции" [employment]="Служба занятости" [education]="Министерство образования")
declare -A EN=([migration]="Migration Agency" [employment]="Employment Service" [education]="Ministry of Education")

mkdir -p "$OUT"
"$JOL" authority --dir "$AUTH" init --instance central-server

for agency in migration employment education; do
  dir="$OUT/$agency"
  mkdir -p "$dir/keys"
  # At the agency: an event-signing key and a TLS key with its certificate request.
  "$JOL" keygen --out "$dir/keys/sign.pem" >/dev/null
  "$JOL" tls-keygen --member "${ID[$agency]}" --out "$dir/keys/tls.pem" >/dev/null
  # At the authority: the certificate, from the request, and the membership.
  "$JOL" authority --dir "$AUTH" issue-cert --member "${ID[$agency]}" \
    --csr "$dir/keys/tls.csr.pem" --out "$dir/keys/tls.cert.pem" >/dev/null
  "$JOL" authority --dir "$AUTH" add-member --id "${ID[$agency]}" \
    --name-ky "${KY[$agency]}" --name-ru "${RU[$agency]}" --name-en "${EN[$agency]}" \
    --endpoint "127.0.0.1:${PEER[$agency]}" --tls-cert "$dir/keys/tls.cert.pem" \
    --signing-key "sign-1=$dir/keys/sign.pub.pem" >/dev/null
done

grant() { "$JOL" authority --dir "$AUTH" grant "$@" >/dev/null; }
grant --type returnee-record --publisher "${ID[migration]}"
grant --type returnee-record --reader "${ID[employment]}" --purpose EMPLOYMENT_SERVICES
grant --type returnee-record --reader "${ID[education]}" --purpose TRAINING_SERVICES
grant --type employment-status --publisher "${ID[employment]}"
grant --type employment-status --reader "${ID[migration]}" --purpose REINTEGRATION_CASE_MANAGEMENT
grant --type employment-status --reader "${ID[education]}" --purpose TRAINING_SERVICES
grant --type training-enrolment --publisher "${ID[education]}"
grant --type training-enrolment --reader "${ID[migration]}" --purpose REINTEGRATION_CASE_MANAGEMENT
grant --type training-enrolment --reader "${ID[employment]}" --purpose EMPLOYMENT_SERVICES
grant --type vacancy --publisher "${ID[employment]}"
grant --type vacancy --reader "${ID[migration]}" --purpose REINTEGRATION_CASE_MANAGEMENT
grant --type vacancy --reader "${ID[education]}" --purpose TRAINING_SERVICES
grant --type course-offer --publisher "${ID[education]}"
grant --type course-offer --reader "${ID[migration]}" --purpose REINTEGRATION_CASE_MANAGEMENT
grant --type course-offer --reader "${ID[employment]}" --purpose EMPLOYMENT_SERVICES
# Credentials issued name a credential and the event it attests, never its holder.
grant --type credential-issued --publisher "${ID[education]}"
grant --type credential-issued --reader "${ID[migration]}" --purpose REINTEGRATION_CASE_MANAGEMENT
grant --type credential-issued --reader "${ID[employment]}" --purpose EMPLOYMENT_SERVICES
# Erasures name events, never a person: every member publishes its own and reads everyone's.
for agency in migration employment education; do
  grant --type erasure --publisher "${ID[$agency]}"
done
grant --type erasure --reader "${ID[migration]}" --purpose REINTEGRATION_CASE_MANAGEMENT
grant --type erasure --reader "${ID[employment]}" --purpose EMPLOYMENT_SERVICES
grant --type erasure --reader "${ID[education]}" --purpose TRAINING_SERVICES
"$JOL" authority --dir "$AUTH" sign --out "$OUT/manifest.jws" --days 30

declare -A PURPOSE=(
  [migration]=REINTEGRATION_CASE_MANAGEMENT [employment]=EMPLOYMENT_SERVICES [education]=TRAINING_SERVICES
)
declare -A SUBS=(
  [migration]="employment=employment-status,vacancy,erasure education=training-enrolment,course-offer,erasure,credential-issued"
  [employment]="migration=returnee-record,erasure education=training-enrolment,course-offer,erasure,credential-issued"
  [education]="migration=returnee-record,erasure employment=employment-status,vacancy,erasure"
)
for agency in migration employment education; do
  subscribe=()
  for sub in ${SUBS[$agency]}; do
    subscribe+=(--subscribe "${ID[${sub%%=*}]}=${sub#*=}")
  done
  "$JOL" init-node --out "$OUT/$agency/node.toml" --member "${ID[$agency]}" \
    --local-listen "127.0.0.1:${LOCAL[$agency]}" --peer-listen "127.0.0.1:${PEER[$agency]}" \
    --store-engine "${STORE_ENGINE:-redb}" "${subscribe[@]}" >/dev/null
  # The agency's operator token: every scope, the agency's own purpose. Only its SHA-256 goes
  # into the node's tokens.toml; the token itself is kept for the operator, readable by them only.
  (umask 077; "$JOL" token --config "$OUT/$agency/node.toml" create --name operator \
    --scopes admin --purpose "${PURPOSE[$agency]}" >"$OUT/$agency/operator.token")
done
echo "federation ready in $OUT: start each node with  $JOL serve --config $OUT/<agency>/node.toml"
echo "each agency's operator token is in $OUT/<agency>/operator.token (send it as Authorization: Bearer)"
