# bench/lib/netns.sh - a routed gateway built of three network namespaces, for the benches
# that compare a relay in a gateway with the gateway's own routing (sourced after
# bench/lib/bench.sh, as root): client 10.201.1.2 -> gateway 10.201.1.1 | 10.201.2.1 ->
# origin 10.201.2.2, over two veth pairs, with the client's and the origin's default routes
# through the gateway and forwarding on in it. The addresses exist only inside these
# namespaces; bench_cleanup deletes them.

# TAG -> namespaces NS_C, NS_G, NS_O and addresses CLIENT, GW (the client's side of the
# gateway), GWO (the origin's side), ORIGIN.
netns_gateway() {
  local tag=$1
  NS_C="${tag}c" NS_G="${tag}g" NS_O="${tag}o"
  CLIENT=10.201.1.2 GW=10.201.1.1 GWO=10.201.2.1 ORIGIN=10.201.2.2
  local ns
  for ns in "$NS_C" "$NS_G" "$NS_O"; do
    ip netns add "$ns"
    BENCH_NETNS+=("$ns")
    in_ns "$ns" ip link set lo up
  done
  ip link add "${tag}cg" netns "$NS_C" type veth peer name "${tag}gc" netns "$NS_G"
  ip link add "${tag}og" netns "$NS_O" type veth peer name "${tag}go" netns "$NS_G"
  in_ns "$NS_C" ip addr add $CLIENT/24 dev "${tag}cg"
  in_ns "$NS_C" ip link set "${tag}cg" up
  in_ns "$NS_G" ip addr add $GW/24 dev "${tag}gc"
  in_ns "$NS_G" ip link set "${tag}gc" up
  in_ns "$NS_G" ip addr add $GWO/24 dev "${tag}go"
  in_ns "$NS_G" ip link set "${tag}go" up
  in_ns "$NS_O" ip addr add $ORIGIN/24 dev "${tag}og"
  in_ns "$NS_O" ip link set "${tag}og" up
  in_ns "$NS_C" ip route add default via $GW
  in_ns "$NS_O" ip route add default via $GWO
  in_ns "$NS_G" sysctl -qw net.ipv4.ip_forward=1
}

# NS COMMAND... : runs it in that namespace. (A server whose PID you need is started with
# `ip netns exec NS ... &` itself, so that $! is the server: ip netns exec execs it.)
in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
