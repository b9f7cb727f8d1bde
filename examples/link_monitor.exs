# The Elixir side of examples/link_monitor.rs: a process that links to and monitors the Rust
# worker, then either stops the worker or goes down itself.
#
#   elixir --name owner@127.0.0.1 --cookie secret examples/link_monitor.exs worker@127.0.0.1 stop
#   elixir --name owner@127.0.0.1 --cookie secret examples/link_monitor.exs worker@127.0.0.1 exit
#
#   stop: this process traps exits, sends {:stop, :done} and expects both
#         {:EXIT, worker, :done} and {:DOWN, ref, :process, worker, :done}
#   exit: an owner process ends with :bye; the worker, which watches it, sees that and ends
#         normally, which this process (monitoring the worker) sees
#
# Prints what it receives; exits 1 when something does not come within 10 s.

defmodule Owner do
  @timeout 10_000

  def fail(why) do
    IO.puts("FAILED: #{why}")
    System.halt(1)
  end

  # Asks the worker to watch this process; links to it and monitors it.
  def watch(worker_name) do
    send(worker_name, {:watch, self()})

    receive do
      {:watching, worker} ->
        Process.link(worker)
        ref = Process.monitor(worker)
        IO.puts("#{inspect(self())} linked to and monitors #{inspect(worker)}")
        {worker, ref}
    after
      @timeout -> fail("no answer from #{inspect(worker_name)}")
    end
  end

  # The worker ends first: this process (trapping exits) sees both the exit signal of the
  # link and the DOWN of the monitor.
  def stop(worker_name) do
    Process.flag(:trap_exit, true)
    {worker, ref} = watch(worker_name)
    send(worker, {:stop, :done})

    receive do
      {:EXIT, ^worker, reason} -> IO.puts("got {:EXIT, #{inspect(worker)}, #{inspect(reason)}}")
    after
      @timeout -> fail("no EXIT from the worker")
    end

    receive do
      {:DOWN, ^ref, :process, ^worker, reason} ->
        IO.puts("got {:DOWN, ref, :process, #{inspect(worker)}, #{inspect(reason)}}")
    after
      @timeout -> fail("no DOWN for the worker")
    end
  end

  # The owner ends first: the worker sees it and ends normally, which this process sees.
  def exit(worker_name) do
    parent = self()

    {owner, owner_ref} =
      spawn_monitor(fn ->
        {worker, _ref} = watch(worker_name)
        send(parent, {:watched, worker})

        receive do
          :go -> Kernel.exit(:bye)
        end
      end)

    worker =
      receive do
        {:watched, worker} -> worker
      after
        @timeout -> fail("the owner did not get to watch the worker")
      end

    # Monitored before the owner goes, so the worker's end is seen, not a :noproc.
    worker_ref = Process.monitor(worker)
    send(owner, :go)

    receive do
      {:DOWN, ^owner_ref, :process, ^owner, reason} ->
        IO.puts("owner #{inspect(owner)} went down: #{inspect(reason)}")
    after
      @timeout -> fail("the owner did not go down")
    end

    receive do
      {:DOWN, ^worker_ref, :process, ^worker, reason} ->
        IO.puts("worker #{inspect(worker)} ended: #{inspect(reason)}")
    after
      @timeout -> fail("the worker did not end after its owner went down")
    end
  end
end

[worker_node, direction] = System.argv()
worker_name = {:worker, String.to_atom(worker_node)}

case direction do
  "stop" -> Owner.stop(worker_name)
  "exit" -> Owner.exit(worker_name)
end

IO.puts("#{direction}: done")
