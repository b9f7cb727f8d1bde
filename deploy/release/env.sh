# rel/env.sh.eex of the app (`mix release.init` creates it), sourced by every bin/<app> command.
export RELEASE_DISTRIBUTION=name
[ -n "$RELEASE_COOKIE_FILE" ] && export RELEASE_COOKIE="$(cat "$RELEASE_COOKIE_FILE")"
# The address on the network the other tasks are on: the source address the kernel picks
# toward one of them (needs iproute2 and getent in the image). An app with no clustering code
# (no DNS_CLUSTER_QUERY; beamlink run --mesh connects its nodes) names them in TASKS_QUERY.
peer="$(getent ahostsv4 "${DNS_CLUSTER_QUERY:-$TASKS_QUERY}" | awk 'NR == 1 { print $1 }')"
ip="$(ip -4 route get "$peer" | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
export RELEASE_NODE="${RELEASE_NAME}@${ip}"
