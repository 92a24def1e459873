using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace S3Proxy;

/// <summary>
/// A test front for an S3-compatible server (moto_server) that stands where Cloudflare R2 would:
/// HTTPS with a self-signed certificate made at start-up, every request R2 would refuse failed
/// and recorded, requests counted by S3 operation, and faults injected on demand through a
/// control API on a separate plain-HTTP loopback port.
///
/// The public ports are TCP relays in front of an internal Kestrel server, so that the "down"
/// fault can close the listening socket (clients get "connection refused") and open it again
/// on the same port.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: S3Proxy --upstream http://127.0.0.1:<port> [--https-port N (0 = any free port)]
                       [--http-port N (plain-HTTP front as well; 0 = any free port)]
                       [--control-port N (0 = any free port)] [--cert-out file.pem] [--quiet]

        Prints "listening https=<port> control=<port>[ http=<port>]" once ready; SIGTERM stops it.
        Control API (plain HTTP on 127.0.0.1:<control>):
          GET  /counters        counts by operation, payload signing, faults, rejected requests
          GET  /requests[?last=N&operation=Op]   the most recent request records
          POST /reset           zeroes the counters and the request log
          POST /fault {json}    adds a fault rule, e.g. {"kind":"status","status":503,"code":"SlowDown","count":3,"match":"PUT"}
                                kinds: status, reset, stall (seconds; with count -1 also a fixed latency),
                                truncate (GET bodies; seconds: stall before the close), down (seconds optional)
                                fields: count (default 1, -1 = until cleared), match (operation or method,
                                comma-separated), path (substring of the path), skip (let N through first)
          POST /clear           removes every fault rule and brings a downed endpoint back
          GET  /health          200 when running
        """;

    public static async Task<int> Main(string[] args)
    {
        ProxyOptions options;
        try
        {
            options = ProxyOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (options.Help)
        {
            Console.Out.WriteLine(Usage);
            return 0;
        }

        using var certificate = TestCertificate.Create();
        if (options.CertificateOutput is not null)
        {
            await File.WriteAllTextAsync(options.CertificateOutput, certificate.ExportCertificatePem() + "\n");
        }

        var log = new RequestLog();
        var faults = new FaultInjector();
        var relays = new List<TcpRelay>();
        using var forwarder = new Forwarder(options.Upstream, log, faults, options.Quiet ? null : Console.Out);

        // The proxy itself: Kestrel on internal loopback ports, reached only through the relays.
        var proxyBuilder = WebApplication.CreateSlimBuilder();
        proxyBuilder.Logging.ClearProviders();
        proxyBuilder.WebHost.UseKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MinRequestBodyDataRate = null;
            k.Limits.MinResponseDataRate = null;
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http1;
                l.UseHttps(certificate);
            });
            if (options.HttpPort is not null)
            {
                k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1);
            }
        });
        var proxy = proxyBuilder.Build();
        proxy.Run(forwarder.HandleAsync);
        await proxy.StartAsync();
        var internalPorts = proxy.Urls.Select(u => new Uri(u)).ToDictionary(u => u.Scheme, u => u.Port);

        var https = new TcpRelay(options.HttpsPort, new IPEndPoint(IPAddress.Loopback, internalPorts["https"]));
        https.Start();
        relays.Add(https);
        TcpRelay? http = null;
        if (options.HttpPort is { } httpPort)
        {
            http = new TcpRelay(httpPort, new IPEndPoint(IPAddress.Loopback, internalPorts["http"]));
            http.Start();
            relays.Add(http);
        }

        faults.Down += () => relays.ForEach(r => r.Stop());
        faults.Up += () => relays.ForEach(r => r.Start());

        // The control API: plain HTTP on its own loopback port, never faulted, never counted.
        var controlBuilder = WebApplication.CreateSlimBuilder();
        controlBuilder.Logging.ClearProviders();
        controlBuilder.WebHost.UseKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Loopback, options.ControlPort, l => l.Protocols = HttpProtocols.Http1);
        });
        var control = controlBuilder.Build();
        ControlApi.Map(control, log, faults, relays);
        await control.StartAsync();
        int controlPort = new Uri(control.Urls.First()).Port;

        Console.Out.WriteLine($"listening https={https.Port} control={controlPort}" + (http is null ? "" : $" http={http.Port}"));
        Console.Out.WriteLine($"upstream {options.Upstream}");
        Console.Out.Flush();

        // Both hosts stop on SIGTERM/SIGINT (their console lifetimes); wait for either.
        await Task.WhenAny(proxy.WaitForShutdownAsync(), control.WaitForShutdownAsync());
        foreach (var relay in relays)
        {
            relay.Stop();
        }

        await Task.WhenAll(proxy.StopAsync(), control.StopAsync());
        return 0;
    }
}
