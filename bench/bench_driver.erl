%% The BEAM side of scripts/bench: a hidden node that runs one workload at a time
%% against a target node and reports what it measured. The same code runs
%% against a BEAM node (bench_target.erl) and against `beamlink run
%% --bench-services`: a target is only a node name that has rig_sink and
%% rig_echo registered.
%%
%%   erl -noshell -hidden -name D@127.0.0.1 -pa EBIN -s bench_driver main
%%
%% Protocol: one Erlang term per line on stdin (terminated by "."), one line
%% "RESULT <json object>" per command on stdout; {"error": ...} when the command
%% failed. The node halts when stdin closes. Commands:
%%
%%   env.                          OTP release, erts version, schedulers, busy limit
%%   {prepare, T}.                 connect, check rig_sink and rig_echo answer, and
%%                                 say what T is (BEAM release, or beamlink + flags)
%%   {tput, T, Kind, N, Warm}.     Warm messages then N messages of Kind (tuple16 =
%%                                 {Seq, <<16 bytes>>}, bin1k, bin64k) to {rig_sink, T},
%%                                 each batch followed by {rig_done, self(), Ref};
%%                                 the time of the N batch ends when T's reply arrives;
%%                                 busy_dist_port: suspensions of the sender in it
%%   {rtt, T, N, Warm}.            {ping, self(), {Seq, <<16 bytes>>}} to {rig_echo, T}
%%                                 and wait for {pong, _}, N times after Warm unmeasured
%%   {connect, T, N, PauseMs}.     N cycles of net_kernel:connect_node/1 and
%%                                 erlang:disconnect_node/1, PauseMs apart
%%   {hidden_nodes, T}.            rpc:call(T, erlang, nodes, [hidden])
%%
%% Times are taken with erlang:monotonic_time(nanosecond); latencies are
%% reported in microseconds (median, p90, p99, ... by nearest rank).
%% Only OTP modules present in 25, 27 and 29 are used.
-module(bench_driver).
-export([main/0]).

-define(RUN_TIMEOUT_MS, 300000).
-define(REPLY_TIMEOUT_MS, 10000).

main() ->
    %% -s runs in a process that boot continues after: the loop gets its own.
    spawn(fun() ->
        reply(#{ready => atom_to_binary(node(), utf8)}),
        loop()
    end),
    ok.

loop() ->
    case io:get_line(standard_io, "") of
        Line when is_list(Line); is_binary(Line) ->
            Result =
                try
                    handle(parse(unicode:characters_to_list(Line)))
                catch
                    Class:Reason:Stack ->
                        #{error => text("~0p", [{Class, Reason, lists:sublist(Stack, 3)}])}
                end,
            reply(Result),
            loop();
        _Eof ->
            erlang:halt(0)
    end.

parse(Text) ->
    {ok, Tokens, _} = erl_scan:string(Text),
    {ok, Term} = erl_parse:parse_term(Tokens),
    Term.

reply(Map) ->
    io:put_chars(standard_io, ["RESULT ", json(Map), $\n]).

%% ---------------------------------------------------------------- commands

handle(env) ->
    #{otp_release => list_to_binary(erlang:system_info(otp_release)),
      erts_version => list_to_binary(erlang:system_info(version)),
      schedulers => erlang:system_info(schedulers_online),
      dist_buf_busy_limit => erlang:system_info(dist_buf_busy_limit),
      node => atom_to_binary(node(), utf8)};
handle({prepare, T}) ->
    true = net_kernel:connect_node(T),
    Ref = make_ref(),
    {rig_echo, T} ! {ping, self(), Ref},
    receive {pong, Ref} -> ok after ?REPLY_TIMEOUT_MS -> error({no_pong_from, T}) end,
    {rig_sink, T} ! {rig_done, self(), Ref},
    receive {rig_done, Ref, _} -> ok after ?REPLY_TIMEOUT_MS -> error({no_rig_done_from, T}) end,
    describe(T);
handle({tput, T, Kind, N, Warm}) ->
    Payload = payload(Kind),
    _ = tput_run(T, Kind, Payload, Warm),
    Busy = busy_counter(),
    Ns = tput_run(T, Kind, Payload, N),
    #{ns => Ns, count => N, msgs_per_s => N / (Ns / 1.0e9),
      busy_dist_port => busy_count(Busy),
      ext_size => erlang:external_size(sample(Kind, Payload))};
handle({rtt, T, N, Warm}) ->
    Bin = binary:copy(<<16#AB>>, 16),
    _ = rtt_loop({rig_echo, T}, Bin, 1, Warm, []),
    stats(rtt_loop({rig_echo, T}, Bin, 1, N, []));
handle({connect, T, N, PauseMs}) ->
    disconnect(T),
    timer:sleep(PauseMs),
    Cycles = [connect_cycle(T, PauseMs) || _ <- lists:seq(1, N)],
    Ok = [C || {true, C, _} <- Cycles],
    Failures = length([x || {Res, _, _} <- Cycles, Res =/= true]),
    true = net_kernel:connect_node(T),
    #{connect => stats(Ok), cycle => stats([C || {true, _, C} <- Cycles]),
      failures => Failures, pause_ms => PauseMs};
handle({hidden_nodes, T}) ->
    case rpc:call(T, erlang, nodes, [hidden], ?REPLY_TIMEOUT_MS) of
        L when is_list(L) -> #{nodes => [atom_to_binary(X, utf8) || X <- L]};
        Other -> #{error => text("~0p", [Other])}
    end;
handle(Other) ->
    #{error => text("unknown command ~0p", [Other])}.

%% A BEAM answers rpc for erlang:system_info/1; beamlink answers its GenServer
%% `beamlink` with an info map that lists the flags of each of its links.
describe(T) ->
    case rpc:call(T, erlang, system_info, [otp_release], ?REPLY_TIMEOUT_MS) of
        Rel when is_list(Rel) ->
            #{kind => beam, otp_release => list_to_binary(Rel)};
        _ ->
            Info = gen_server:call({beamlink, T}, info, ?REPLY_TIMEOUT_MS),
            Me = node(),
            Flags = [F || #{name := Name, flags := F} <- maps:get(peers, Info, []), Name =:= Me],
            #{kind => beamlink, version => maps:get(version, Info, <<>>),
              flags_with_us => case Flags of [F | _] -> F; [] -> null end}
    end.

%% ---------------------------------------------------------------- throughput

payload(tuple16) -> binary:copy(<<16#AB>>, 16);
payload(bin1k) -> binary:copy(<<16#CD>>, 1024);
payload(bin64k) -> binary:copy(<<16#EF>>, 65536).

sample(tuple16, Bin) -> {123456, Bin};
sample(_, Bin) -> Bin.

tput_run(T, Kind, Payload, N) ->
    flush(),
    Dest = {rig_sink, T},
    Ref = make_ref(),
    T0 = erlang:monotonic_time(nanosecond),
    case Kind of
        tuple16 -> send_tuples(Dest, Payload, 1, N);
        _ -> send_binaries(Dest, Payload, N)
    end,
    Dest ! {rig_done, self(), Ref},
    Count =
        receive {rig_done, Ref, C} -> C
        after ?RUN_TIMEOUT_MS -> error({no_rig_done_from, T})
        end,
    Ns = erlang:monotonic_time(nanosecond) - T0,
    Count =:= N orelse error({sink_counted, Count, sent, N}),
    Ns.

%% How often the sender was suspended on a busy distribution port (its output
%% queue over dist_buf_busy_limit) during one batch: erlang:system_monitor/2
%% reports each suspension as {monitor, Pid, busy_dist_port, Port}.
busy_counter() ->
    Self = self(),
    Counter = spawn(fun() -> busy_loop(Self, 0) end),
    _ = erlang:system_monitor(Counter, [busy_dist_port]),
    Counter.

busy_loop(Owner, K) ->
    receive
        {monitor, _, busy_dist_port, _} -> busy_loop(Owner, K + 1);
        {count, Ref} -> Owner ! {busy_count, Ref, K}
    end.

busy_count(Counter) ->
    _ = erlang:system_monitor(undefined),
    Ref = make_ref(),
    Counter ! {count, Ref},
    receive {busy_count, Ref, K} -> K after ?REPLY_TIMEOUT_MS -> null end.

send_tuples(_Dest, _Bin, I, N) when I > N -> ok;
send_tuples(Dest, Bin, I, N) ->
    Dest ! {I, Bin},
    send_tuples(Dest, Bin, I + 1, N).

send_binaries(_Dest, _Bin, 0) -> ok;
send_binaries(Dest, Bin, K) ->
    Dest ! Bin,
    send_binaries(Dest, Bin, K - 1).

flush() ->
    receive _ -> flush() after 0 -> ok end.

%% ---------------------------------------------------------------- latency

rtt_loop(_Dest, _Bin, I, N, Acc) when I > N -> Acc;
rtt_loop(Dest, Bin, I, N, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    Dest ! {ping, self(), {I, Bin}},
    receive
        {pong, {I, _}} -> ok
    after ?REPLY_TIMEOUT_MS -> error({no_pong_for, I})
    end,
    rtt_loop(Dest, Bin, I + 1, N, [erlang:monotonic_time(nanosecond) - T0 | Acc]).

%% ---------------------------------------------------------------- connect

connect_cycle(T, PauseMs) ->
    T0 = erlang:monotonic_time(nanosecond),
    Res = net_kernel:connect_node(T),
    T1 = erlang:monotonic_time(nanosecond),
    disconnect(T),
    T2 = erlang:monotonic_time(nanosecond),
    timer:sleep(PauseMs),
    {Res, T1 - T0, T2 - T0}.

disconnect(T) ->
    erlang:disconnect_node(T),
    wait_gone(T, 1000).

wait_gone(_T, 0) -> timeout;
wait_gone(T, K) ->
    case lists:member(T, nodes(connected)) of
        true -> timer:sleep(1), wait_gone(T, K - 1);
        false -> ok
    end.

%% ---------------------------------------------------------------- stats

stats([]) ->
    #{n => 0};
stats(SamplesNs) ->
    S = list_to_tuple(lists:sort(SamplesNs)),
    Len = tuple_size(S),
    Us = fun(Ns) -> Ns / 1000 end,
    Rank = fun(P) -> element(max(1, min(Len, ceil(P / 100 * Len))), S) end,
    #{n => Len,
      min_us => Us(element(1, S)),
      median_us => Us(Rank(50)),
      p90_us => Us(Rank(90)),
      p99_us => Us(Rank(99)),
      max_us => Us(element(Len, S)),
      mean_us => Us(lists:sum(tuple_to_list(S)) / Len)}.

%% ---------------------------------------------------------------- json

json(M) when is_map(M) ->
    Fields = [[json_string(key(K)), $:, json(V)] || {K, V} <- lists:sort(maps:to_list(M))],
    [${, lists:join($,, Fields), $}];
json(L) when is_list(L) -> [$[, lists:join($,, [json(X) || X <- L]), $]];
json(B) when is_binary(B) -> json_string(B);
json(true) -> "true";
json(false) -> "false";
json(null) -> "null";
json(A) when is_atom(A) -> json_string(atom_to_binary(A, utf8));
json(I) when is_integer(I) -> integer_to_list(I);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 3}, compact]).

key(K) when is_atom(K) -> atom_to_binary(K, utf8);
key(K) when is_binary(K) -> K.

json_string(B) ->
    [$", [escape(C) || <<C>> <= B], $"].

escape($") -> "\\\"";
escape($\\) -> "\\\\";
escape(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
escape(C) -> C.

text(Format, Args) ->
    unicode:characters_to_binary(io_lib:format(Format, Args)).
