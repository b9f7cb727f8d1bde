# The Elixir side of examples/typed_messages.rs: a process registered as :shop that speaks
# the same protocol as the labyrinth fixture's :labyrinth_echo, but knows what an order is.
#
#   elixir --name shop@127.0.0.1 --cookie secret examples/typed_messages.exs
#
#   * message {:ping, pid, %Shop.Order{}} -> send(pid, {:pong, order}) with the order shipped
#   * GenServer.call {:echo, term}         -> {:echo, term}

defmodule Shop.Order do
  defstruct [:id, :item, :quantity, :gift_note, :status]
end

defmodule Shop do
  use GenServer

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:echo, term}, _from, state), do: {:reply, {:echo, term}, state}

  @impl true
  def handle_info({:ping, from, %Shop.Order{} = order}, state) when is_pid(from) do
    IO.puts("#{node()} got #{inspect(order)} from #{inspect(from)}")
    send(from, {:pong, %{order | status: {:shipped, %{tracking: "1Z#{order.id}"}}}})
    {:noreply, state}
  end

  def handle_info(other, state) do
    IO.puts("#{node()} ignores #{inspect(other)}")
    {:noreply, state}
  end
end

{:ok, _} = GenServer.start(Shop, nil, name: :shop)
IO.puts("#{node()}: :shop is up")
Process.sleep(:infinity)
