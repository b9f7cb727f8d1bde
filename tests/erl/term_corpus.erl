%% The BEAM side of tests/term_differential.rs.
%%
%% main(["generate", Dir]) writes Dir/corpus.bin: several thousand seeded terms of every
%% kind, each as term_to_binary(T, [{minor_version, 2}]) (the encoding distribution uses,
%% and term_to_binary/1's default from OTP 26), framed as
%% <<ClassLen:8, Class, Len:32, Ext:Len/binary>>; and Dir/otp_release.txt.
%%
%% main(["check", Dir]) reads what the Rust side wrote and answers:
%%   corpus_check.bin     one byte per corpus term: 1 if binary_to_term(RustBytes) =:= the
%%                        original, 0 if not equal, 2 if the BEAM refuses Rust's bytes,
%%                        3 if Rust could not re-encode the term
%%   random_reencoded.bin for each Rust-made term: <<Len:32, term_to_binary(binary_to_term(B))>>,
%%                        or <<16#FFFFFFFF:32>> if the BEAM refuses it
%%   mutated_verdicts.bin for each mutated encoding: <<Accepted:8, Used:32, Same:8>> from
%%                        binary_to_term(B, [used]); Same is 1 when Rust's re-encoding of its
%%                        own decoding is =:= the BEAM's term
%% Every input file is a sequence of <<Len:32, Bytes:Len/binary>> frames, Len 16#FFFFFFFF
%% meaning "none".
-module(term_corpus).
-export([main/1]).

main(Args) ->
    try
        run(Args),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format(standard_error, "term_corpus ~p failed: ~p:~p~n~p~n", [Args, Class, Reason, Stack]),
            halt(2)
    end.

run(["generate", Dir]) ->
    rand:seed(exsss, {2026, 11, 26}),
    Items = lists:append([
        ints(),
        [{int_random, rand_int()} || _ <- seq(600)],
        [{neg_list, [rand:uniform(601) - 301 || _ <- seq(rand:uniform(20))]} || _ <- seq(200)],
        strings(),
        floats(),
        [{atom, rand_atom()} || _ <- seq(400)],
        [{map_small, rand_map(rand:uniform(32) - 1)} || _ <- seq(200)],
        [{map_large, rand_map(32 + rand:uniform(70))} || _ <- seq(60)],
        pids(),
        refs(),
        ports(),
        improper(),
        [{binary, rand:bytes(rand:uniform(301) - 1)} || _ <- seq(200)] ++ [{binary, rand:bytes(1024)}],
        [{bitstring, rand_bits()} || _ <- seq(200)],
        funs(),
        exports(),
        [{nested, rand_term(4)} || _ <- seq(900)]
    ]),
    Frames = [frame(Class, term_to_binary(T, [{minor_version, 2}])) || {Class, T} <- Items],
    ok = file:write_file(filename:join(Dir, "corpus.bin"), Frames),
    ok = file:write_file(filename:join(Dir, "otp_release.txt"), erlang:system_info(otp_release));
run(["check", Dir]) ->
    Corpus = [Ext || {_Class, Ext} <- read_corpus(read(Dir, "corpus.bin"))],
    Rust = frames(read(Dir, "rust_reencoded.bin")),
    length(Corpus) =:= length(Rust) orelse error({count_mismatch, length(Corpus), length(Rust)}),
    CorpusChecks = [corpus_verdict(Ext, R) || {Ext, R} <- lists:zip(Corpus, Rust)],
    ok = file:write_file(filename:join(Dir, "corpus_check.bin"), CorpusChecks),
    Random = frames(read(Dir, "rust_random.bin")),
    ok = file:write_file(filename:join(Dir, "random_reencoded.bin"), [reencode(B) || B <- Random]),
    Mutated = pairs(frames(read(Dir, "mutated.bin"))),
    ok = file:write_file(filename:join(Dir, "mutated_verdicts.bin"),
                         [mutation_verdict(B, R) || {B, R} <- Mutated]).

%% ---- checks --------------------------------------------------------------------------------

corpus_verdict(_Ext, none) -> 3;
corpus_verdict(Ext, RustBytes) ->
    case catch binary_to_term(RustBytes) of
        {'EXIT', _} -> 2;
        T -> bool(T =:= binary_to_term(Ext))
    end.

reencode(B) ->
    case catch binary_to_term(B) of
        {'EXIT', _} -> <<16#FFFFFFFF:32>>;
        T ->
            E = term_to_binary(T, [{minor_version, 2}]),
            <<(byte_size(E)):32, E/binary>>
    end.

mutation_verdict(B, RustBytes) ->
    case catch binary_to_term(B, [used]) of
        {'EXIT', _} -> <<0, 0:32, 0>>;
        {T, Used} ->
            Same = case RustBytes of
                       none -> 0;
                       _ -> case catch binary_to_term(RustBytes) of
                                {'EXIT', _} -> 0;
                                T2 -> bool(T2 =:= T)
                            end
                   end,
            <<1, Used:32, Same>>
    end.

bool(true) -> 1;
bool(false) -> 0.

%% ---- files ---------------------------------------------------------------------------------

read(Dir, Name) ->
    {ok, Bin} = file:read_file(filename:join(Dir, Name)),
    Bin.

frame(Class, Bin) ->
    C = atom_to_binary(Class),
    <<(byte_size(C)):8, C/binary, (byte_size(Bin)):32, Bin/binary>>.

read_corpus(<<>>) -> [];
read_corpus(<<CL:8, C:CL/binary, L:32, Ext:L/binary, Rest/binary>>) -> [{C, Ext} | read_corpus(Rest)].

frames(<<>>) -> [];
frames(<<16#FFFFFFFF:32, Rest/binary>>) -> [none | frames(Rest)];
frames(<<L:32, B:L/binary, Rest/binary>>) -> [B | frames(Rest)].

pairs([]) -> [];
pairs([A, B | Rest]) -> [{A, B} | pairs(Rest)].

%% ---- corpus --------------------------------------------------------------------------------

seq(N) -> lists:seq(1, N).

pick(List) -> lists:nth(rand:uniform(length(List)), List).

ints() ->
    Bases = [0, 255, 256, 1 bsl 31, -(1 bsl 31), 1 bsl 32, 1 bsl 63, -(1 bsl 63),
             1 bsl 64, -(1 bsl 64), 1 bsl (8 * 255), -(1 bsl (8 * 255)), 1 bsl 2048],
    [{int_boundary, B + D} || B <- Bases, D <- [-2, -1, 0, 1, 2]].

rand_int() ->
    Bits = pick([4, 8, 9, 16, 31, 32, 33, 63, 64, 65, 100, 2040, 2048, 2100]),
    V = rand:uniform(1 bsl Bits) - 1,
    case rand:uniform(2) of 1 -> V; 2 -> -V end.

strings() ->
    [{string, [rand:uniform(256) - 1 || _ <- seq(rand:uniform(100))]} || _ <- seq(200)]
        ++ [{string, lists:duplicate(65535, 7)}, {list_long, lists:duplicate(65536, 7)},
            {string, "hello"}, {list, [256]}, {list, [-1, 2]}].

floats() ->
    Special = [0.0, -0.0, 5.0e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.5, 0.1],
    Random = [F || _ <- seq(400), F <- rand_float()],
    [{float, F} || F <- Special ++ Random].

rand_float() ->
    case rand:uniform(2) of
        1 -> try <<F/float>> = <<(rand:uniform(1 bsl 64) - 1):64>>, [F] catch _:_ -> [] end;
        2 -> [(rand:uniform() - 0.5) * math:pow(10, rand:uniform(40) - 20)]
    end.

codepoint() ->
    case rand:uniform(4) of
        1 -> rand:uniform(127);
        2 -> rand:uniform(255);
        3 -> 16#100 + rand:uniform(16#D7FF - 16#100);
        4 -> 16#E000 + rand:uniform(16#10FFFF - 16#E000)
    end.

rand_atom() ->
    Len = case rand:uniform(3) of 1 -> rand:uniform(256) - 1; _ -> rand:uniform(12) end,
    list_to_atom([codepoint() || _ <- seq(Len)]).

rand_map(N) ->
    maps:from_list([{rand_term(1), rand_term(1)} || _ <- seq(N)]).

atom_ext(A) ->
    B = atom_to_binary(A),
    <<119, (byte_size(B)):8, B/binary>>.

node_name() -> pick(['a@b', 'app@127.0.0.1', 'x@y.z', 'node@host']).

rand_pid() ->
    binary_to_term(<<131, 88, (atom_ext(node_name()))/binary, (rand:uniform(1 bsl 32) - 1):32,
                     (rand:uniform(1 bsl 32) - 1):32, (rand:uniform(1 bsl 32 - 1)):32>>).

pids() ->
    [{pid, self()}, {pid, spawn(fun() -> ok end)}] ++ [{pid, rand_pid()} || _ <- seq(200)].

rand_ref(Words) ->
    binary_to_term(<<131, 90, Words:16, (atom_ext(node_name()))/binary, (rand:uniform(1 bsl 32 - 1)):32,
                     << <<(rand:uniform(1 bsl 32) - 1):32>> || _ <- seq(Words) >>/binary>>).

refs() ->
    [{ref, make_ref()}, {ref, alias()}, {ref, monitor(process, self())}]
        ++ [{ref, rand_ref(pick([1, 2, 3, 3, 4, 5, 5]))} || _ <- seq(200)].

ports() ->
    [{port, P} || P <- lists:sublist(erlang:ports(), 3)]
        ++ [{port, binary_to_term(<<131, 89, (atom_ext(node_name()))/binary,
                                     (rand:uniform(1 bsl 32) - 1):32, (rand:uniform(1 bsl 32 - 1)):32>>)}
            || _ <- seq(40)]
        ++ [{port_v4, binary_to_term(<<131, 120, (atom_ext(node_name()))/binary,
                                       (rand:uniform(1 bsl 64) - 1):64, (rand:uniform(1 bsl 32 - 1)):32>>)}
            || _ <- seq(60)].

improper() ->
    [{improper, [a | b]}, {improper, [1 | 2]}, {improper, [alias | make_ref()]}]
        ++ [{improper, lists:foldr(fun(X, Acc) -> [X | Acc] end, non_list(), [rand_term(1) || _ <- seq(rand:uniform(5))])}
            || _ <- seq(200)].

non_list() ->
    case rand_term(1) of
        L when is_list(L) -> {L};
        T -> T
    end.

rand_bits() ->
    B = rand:uniform(7),
    <<(rand:bytes(rand:uniform(20) - 1))/binary, (rand:uniform(1 bsl B) - 1):B>>.

funs() ->
    Free = [rand_term(2) || _ <- seq(150)],
    [{'fun', fun() -> ok end}, {'fun', fun(X) -> X end}]
        ++ [{'fun', case rand:uniform(3) of
                        1 -> fun() -> F end;
                        2 -> fun(A) -> {A, F} end;
                        3 -> G = rand_term(1), fun(A, B) -> [A, B, F, G] end
                    end} || F <- Free].

exports() ->
    [{export, fun lists:map/2}, {export, fun erlang:self/0}]
        ++ [{export, erlang:make_fun(rand_atom(), rand_atom(), rand:uniform(256) - 1)} || _ <- seq(150)].

rand_term(0) -> rand_leaf();
rand_term(Depth) ->
    case rand:uniform(10) of
        1 -> list_to_tuple([rand_term(Depth - 1) || _ <- seq(rand:uniform(6) - 1)]);
        2 -> [rand_term(Depth - 1) || _ <- seq(rand:uniform(6) - 1)];
        3 -> rand_map(rand:uniform(6) - 1);
        4 -> [rand_term(Depth - 1) | rand_leaf()];
        _ -> rand_leaf()
    end.

rand_leaf() ->
    case rand:uniform(13) of
        1 -> rand:uniform(300) - 1;
        2 -> rand_int();
        3 -> [F || F <- rand_float()];
        4 -> pick([ok, error, true, undefined, '', 'héllo', 'ünïcödé_ατομο']);
        5 -> rand:bytes(rand:uniform(10) - 1);
        6 -> rand_bits();
        7 -> rand_pid();
        8 -> rand_ref(3);
        9 -> [rand:uniform(256) - 1 || _ <- seq(rand:uniform(5))];
        10 -> [rand:uniform(601) - 301 || _ <- seq(rand:uniform(5))];
        11 -> fun lists:reverse/1;
        12 -> binary_to_term(<<131, 120, (atom_ext(node_name()))/binary, (rand:uniform(1 bsl 64) - 1):64, 1:32>>);
        13 -> []
    end.
