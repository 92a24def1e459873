using System.Net;
using System.Net.Sockets;

namespace S3Proxy;

/// <summary>
/// A public loopback port that relays bytes (TLS included, untouched) to an internal port.
/// <see cref="Stop"/> closes the listening socket, so new connections are refused, and resets the
/// open ones; <see cref="Start"/> listens again on the same port. A reset on one side is passed
/// on as a reset; an orderly close as an orderly close.
/// </summary>
internal sealed class TcpRelay
{
    private readonly IPEndPoint _target;
    private readonly object _gate = new();
    private readonly HashSet<Socket> _open = [];
    private TcpListener? _listener;

    public TcpRelay(int port, IPEndPoint target)
    {
        Port = port;
        _target = target;
    }

    /// <summary>The public port (the chosen one once started with 0).</summary>
    public int Port { get; private set; }

    public bool IsListening
    {
        get
        {
            lock (_gate)
            {
                return _listener is not null;
            }
        }
    }

    public void Start()
    {
        lock (_gate)
        {
            if (_listener is not null)
            {
                return;
            }

            var listener = new TcpListener(IPAddress.Loopback, Port);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start(512);
            Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            _listener = listener;
            _ = AcceptLoopAsync(listener);
        }
    }

    public void Stop()
    {
        List<Socket> open;
        lock (_gate)
        {
            _listener?.Stop();
            _listener = null;
            open = _open.ToList();
            _open.Clear();
        }

        foreach (var socket in open)
        {
            Abort(socket);
        }
    }

    private async Task AcceptLoopAsync(TcpListener listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(Socket client)
    {
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        lock (_gate)
        {
            if (_listener is null)
            {
                Abort(client);
                server.Dispose();
                return;
            }

            _open.Add(client);
            _open.Add(server);
        }

        try
        {
            await server.ConnectAsync(_target);
            var up = PumpAsync(client, server);
            var down = PumpAsync(server, client);
            var first = await Task.WhenAny(up, down);
            if (first.IsFaulted)
            {
                Abort(client);
                Abort(server);
            }

            await Task.WhenAll(up, down);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            Abort(client);
            Abort(server);
        }
        finally
        {
            lock (_gate)
            {
                _open.Remove(client);
                _open.Remove(server);
            }

            client.Dispose();
            server.Dispose();
        }
    }

    /// <summary>Copies until end of stream, then half-closes the other side; throws on a reset.</summary>
    private static async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[1 << 16];
        while (true)
        {
            int n = await from.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0)
            {
                try
                {
                    to.Shutdown(SocketShutdown.Send);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // The other side is gone already.
                }

                return;
            }

            int offset = 0;
            while (offset < n)
            {
                offset += await to.SendAsync(buffer.AsMemory(offset, n - offset), SocketFlags.None);
            }
        }
    }

    /// <summary>Closes with linger 0: the peer gets a TCP RST.</summary>
    private static void Abort(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }
    }
}
