#!/usr/bin/env bash
# The API service driven by the AWS CLI: start the elbv2-api example on
# 127.0.0.1, build a small fleet with `aws elbv2 --endpoint-url`, describe it
# with pagination, tag, modify attributes, check the API's errors, delete;
# then stop the server, revert the deletion with pitr, restart, and see the
# load balancer back through DescribeLoadBalancers. Then the same server on
# an EC2 endpoint (moto's server) for its network, archiving its store to an
# S3 bucket on that server, restored from there. Bounded: every wait has a
# limit, and the servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# The AWS CLI, and moto's server as the EC2 endpoint the API asks about
# subnets and security groups (--ec2-endpoint).
export PATH="$HOME/.local/bin:$PATH"
if ! command -v aws >/dev/null 2>&1; then
  python3 -m pip install --quiet --user awscli
fi
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet --user 'moto[server]'
  hash -r
fi

build_examples elbv2-api pitr
api=$examples/elbv2-api
pitr=$examples/pitr

work=$(mktemp -d)
server_pid="" ec2_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid"
  fi
  server_pid=""
}
stop_ec2() {
  if [ -n "$ec2_pid" ]; then kill "$ec2_pid" 2>/dev/null || true; wait "$ec2_pid" 2>/dev/null || true; fi
  ec2_pid=""
}
trap 'stop_server; stop_ec2; rm -rf "$work"' EXIT

cat >"$work/credentials" <<'KEYS'
AKIDALICE alice-secret 111122223333
AKIDBOB bob-secret 444455556666
KEYS
cat >"$work/network" <<'NET'
subnet-a vpc-1 us-east-1a
subnet-b vpc-1 us-east-1b
sg sg-1 vpc-1
NET

start_server() { # the network's flags, then the rest
  "$api" --dir "$work/store" --listen 127.0.0.1:0 --credentials "$work/credentials" \
    --expect-store elbv2-api/ci "$@" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  for _ in $(seq 1 100); do
    if grep -q '^listening on ' "$work/server.out"; then break; fi
    sleep 0.1
  done
  endpoint=$(sed -n 's/^listening on //p' "$work/server.out")
  [ -n "$endpoint" ] || { echo "the server did not start: $(cat "$work/server.err")" >&2; exit 1; }
}

export AWS_ACCESS_KEY_ID=AKIDALICE AWS_SECRET_ACCESS_KEY=alice-secret AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
elb() { aws elbv2 --endpoint-url "$endpoint" --output text "$@"; }
expect_error() { # CODE, then the command
  local code=$1; shift
  if out=$(elb "$@" 2>&1); then echo "expected $code from: $*" >&2; exit 1; fi
  grep -q "$code" <<<"$out" || { echo "expected $code, got: $out" >&2; exit 1; }
}

start_server --network "$work/network" --create-if-missing
alb=$(elb create-load-balancer --name web --subnets subnet-a subnet-b --security-groups sg-1 \
  --query 'LoadBalancers[0].LoadBalancerArn')
nlb=$(elb create-load-balancer --name tcp --type network --subnets subnet-a --query 'LoadBalancers[0].LoadBalancerArn')
tg=$(elb create-target-group --name web-tg --protocol HTTP --port 80 --vpc-id vpc-1 \
  --query 'TargetGroups[0].TargetGroupArn')
elb register-targets --target-group-arn "$tg" --targets Id=i-0123456789abcdef0,Port=8080 Id=i-0123456789abcdef1
http=$(elb create-listener --load-balancer-arn "$alb" --protocol HTTP --port 80 \
  --default-actions "Type=forward,TargetGroupArn=$tg" --query 'Listeners[0].ListenerArn')
elb create-listener --load-balancer-arn "$alb" --protocol HTTPS --port 443 \
  --certificates CertificateArn=arn:aws:acm:us-east-1:111122223333:certificate/abc \
  --default-actions "Type=forward,TargetGroupArn=$tg" >/dev/null
elb create-rule --listener-arn "$http" --priority 10 --conditions Field=path-pattern,Values='/api/*' \
  --actions "Type=forward,TargetGroupArn=$tg" >/dev/null
elb add-tags --resource-arns "$alb" --tags Key=team,Value=payments
elb modify-load-balancer-attributes --load-balancer-arn "$alb" \
  --attributes Key=idle_timeout.timeout_seconds,Value=120 >/dev/null

# Reads: pages of one, following NextMarker (the CLI pages by hand when
# --page-size is given).
names="" marker=""
for _ in 1 2 3 4; do
  page=$(aws elbv2 --endpoint-url "$endpoint" --output json describe-load-balancers --page-size 1 ${marker:+--marker "$marker"})
  names+=$(python3 -c 'import json,sys; print(" ".join(lb["LoadBalancerName"] for lb in json.load(sys.stdin)["LoadBalancers"]), end=" ")' <<<"$page")
  marker=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("NextMarker", ""))' <<<"$page")
  [ -n "$marker" ] || break
done
[ "$names" = "web tcp " ] || { echo "describe-load-balancers in pages of one: $names" >&2; exit 1; }
[ "$(elb describe-listeners --load-balancer-arn "$alb" --query 'length(Listeners)')" = 2 ]
[ "$(elb describe-rules --listener-arn "$http" --query 'length(Rules)')" = 2 ]
[ "$(elb describe-target-health --target-group-arn "$tg" --query 'length(TargetHealthDescriptions)')" = 2 ]
[ "$(elb describe-tags --resource-arns "$alb" --query 'TagDescriptions[0].Tags[0].Value')" = payments ]

# The API's errors.
expect_error DuplicateLoadBalancerName create-load-balancer --name tcp --subnets subnet-a subnet-b
expect_error ResourceInUse delete-target-group --target-group-arn "$tg"
expect_error SubnetNotFound create-load-balancer --name other --subnets subnet-zz subnet-b
AWS_SECRET_ACCESS_KEY=wrong expect_error SignatureDoesNotMatch describe-load-balancers
AWS_ACCESS_KEY_ID=AKIDBOB AWS_SECRET_ACCESS_KEY=bob-secret expect_error LoadBalancerNotFound \
  describe-load-balancers --load-balancer-arns "$alb"

# A deletion, reverted with pitr while the server is stopped.
elb delete-load-balancer --load-balancer-arn "$nlb"
[ "$(elb describe-load-balancers --query 'length(LoadBalancers)')" = 1 ]
stop_server
deletion=$("$pitr" log "$work/store" --deletions --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["transactions"][-1]["seq"])')
"$pitr" revert "$work/store" --txn "$deletion" --expect-store elbv2-api/ci --actor ci:oncall \
  --reason "bring the NLB back" >/dev/null
start_server --network "$work/network"
[ "$(elb describe-load-balancers --names tcp --query 'LoadBalancers[0].LoadBalancerArn')" = "$nlb" ]
stop_server

# The network from an EC2 endpoint: moto's server on 127.0.0.1, a VPC with
# two subnets and a security group made with `aws ec2`; a load balancer on
# them takes its VPC and zones from EC2, and unknown ids get the API's errors.
ec2_port=$(free_port)
moto_server -H 127.0.0.1 -p "$ec2_port" >"$work/ec2.log" 2>&1 &
ec2_pid=$!
ec2() { aws ec2 --endpoint-url "http://127.0.0.1:$ec2_port" --output text "$@"; }
for _ in $(seq 1 100); do
  if ec2 describe-vpcs >/dev/null 2>&1; then break; fi
  sleep 0.2
done
vpc=$(ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId)
subnet_a=$(ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.0.1.0/24 --availability-zone us-east-1a --query Subnet.SubnetId)
subnet_b=$(ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.0.2.0/24 --availability-zone us-east-1b --query Subnet.SubnetId)
group=$(ec2 create-security-group --group-name web --description web --vpc-id "$vpc" --query GroupId)
rm -rf "$work/store"
# The same moto server is an S3-compatible endpoint: the service archives its
# store into a bucket there while it serves.
aws s3api create-bucket --bucket elb-archive --endpoint-url "http://127.0.0.1:$ec2_port" >/dev/null
archive_url="s3://elb-archive/ci?endpoint=http://127.0.0.1:$ec2_port&allow_http=true&region=us-east-1"
start_server --ec2-endpoint "http://127.0.0.1:$ec2_port" --create-if-missing --archive "$archive_url" \
  --archive-interval-ms 200
placed=$(elb create-load-balancer --name on-ec2 --subnets "$subnet_a" "$subnet_b" --security-groups "$group" \
  --query 'LoadBalancers[0].[VpcId,join(`,`,AvailabilityZones[].ZoneName)]')
[ "$placed" = "$vpc	us-east-1a,us-east-1b" ] || { echo "placed from EC2: $placed" >&2; exit 1; }
expect_error "SubnetNotFound.*subnet-00000000000000000" create-load-balancer --name other \
  --subnets "$subnet_a" subnet-00000000000000000
expect_error "InvalidSecurityGroup.*sg-00000000000000000" create-load-balancer --name other \
  --subnets "$subnet_a" "$subnet_b" --security-groups sg-00000000000000000
stop_server
# The archive in S3 holds the whole store, and a restore from it is the same state.
archived=$("$pitr" archive status "$archive_url" --json | json_field archived_seq)
last=$("$pitr" info "$work/store" --json | json_field last_seq)
[ "$archived" = "$last" ] || { echo "the S3 archive ends at $archived, the store at $last" >&2; exit 1; }
"$pitr" restore --from-archive "$archive_url" --at now --out "$work/from-s3" --actor ci:oncall \
  --reason "restore from the S3 archive" --json >/dev/null
[ "$("$pitr" info "$work/from-s3" --json | json_field state_digest)" = "$("$pitr" info "$work/store" --json | json_field state_digest)" ] \
  || { echo "the store restored from S3 differs" >&2; exit 1; }
stop_ec2
echo "aws cli session: fleet built, described, errors checked, deletion reverted with pitr and visible after restart, network read from an EC2 endpoint, store archived to S3 and restored from it"
