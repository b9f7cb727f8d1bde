%% The BEAM side of scripts/bench that is measured rather than measuring:
%%
%% * start/0 registers rig_sink and rig_echo, the same two processes that
%%   `beamlink run --bench-services` provides (contract.md), so that a BEAM node
%%   and beamlink can be benchmarked by the same driver (bench_driver.erl):
%%     rig_sink  receives (and so decodes) every message and counts it; on
%%               {rig_done, Pid, Ref} it sends {rig_done, Ref, Count} to Pid and
%%               resets the count. Messages on one connection arrive in order, so
%%               the reply proves that every earlier message was handled.
%%     rig_echo  answers {ping, Pid, T} with {pong, T}.
%% * hold/1 is the hidden BEAM node of workload f: it connects to one node and
%%   then does nothing, so that its resident memory can be compared with an idle
%%   beamlink connected to the same node.
%%
%% Only erlang BIFs and net_kernel are used, so the module compiles and runs
%% unchanged on OTP 25, 27 and 29. Start with
%%   erl -noshell -name T@127.0.0.1 -pa EBIN -s bench_target start
%%   erl -noshell -hidden -name H@127.0.0.1 -pa EBIN -s bench_target hold ANCHOR
-module(bench_target).
-export([start/0, hold/1, sink/1, echo/0]).

start() ->
    Sink = spawn(?MODULE, sink, [0]),
    Echo = spawn(?MODULE, echo, []),
    true = register(rig_sink, Sink),
    true = register(rig_echo, Echo),
    ok.

sink(Count) ->
    receive
        {rig_done, From, Ref} when is_pid(From) ->
            From ! {rig_done, Ref, Count},
            sink(0);
        _ ->
            sink(Count + 1)
    end.

echo() ->
    receive
        {ping, From, Term} when is_pid(From) -> From ! {pong, Term};
        _ -> ok
    end,
    echo().

%% -s passes the arguments as a list of atoms.
hold([Anchor]) ->
    case net_kernel:connect_node(Anchor) of
        true -> ok;
        Other -> erlang:halt(io_lib:format("cannot connect to ~p: ~p", [Anchor, Other]))
    end.
