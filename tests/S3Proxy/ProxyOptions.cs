using System.Globalization;

namespace S3Proxy;

/// <summary>The command line: <c>--name value</c> pairs and <c>--quiet</c>/<c>--help</c> flags.</summary>
internal sealed record ProxyOptions
{
    public required Uri Upstream { get; init; }

    public int HttpsPort { get; init; }

    /// <summary>A plain-HTTP front as well, when given (0 picks a free port).</summary>
    public int? HttpPort { get; init; }

    public int ControlPort { get; init; }

    /// <summary>Where to write the test certificate (PEM), for clients that want to trust it.</summary>
    public string? CertificateOutput { get; init; }

    /// <summary>No per-request line on stdout.</summary>
    public bool Quiet { get; init; }

    public bool Help { get; init; }

    public static ProxyOptions Parse(IReadOnlyList<string> args)
    {
        Uri? upstream = null;
        int httpsPort = 0, controlPort = 0;
        int? httpPort = null;
        string? certOut = null;
        bool quiet = false;
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            switch (name)
            {
                case "--help" or "-h":
                    return new ProxyOptions { Upstream = new Uri("http://127.0.0.1/"), Help = true };
                case "--quiet":
                    quiet = true;
                    continue;
            }

            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"option {name} needs a value");
            }

            string value = args[++i];
            switch (name)
            {
                case "--upstream":
                    if (!Uri.TryCreate(value, UriKind.Absolute, out upstream) || upstream.Scheme is not ("http" or "https"))
                    {
                        throw new ArgumentException($"--upstream needs an http:// or https:// URL, got '{value}'");
                    }

                    break;
                case "--https-port":
                    httpsPort = Port(name, value);
                    break;
                case "--http-port":
                    httpPort = Port(name, value);
                    break;
                case "--control-port":
                    controlPort = Port(name, value);
                    break;
                case "--cert-out":
                    certOut = Path.GetFullPath(value);
                    break;
                default:
                    throw new ArgumentException($"unknown option '{name}'");
            }
        }

        return new ProxyOptions
        {
            Upstream = upstream ?? throw new ArgumentException("--upstream is required"),
            HttpsPort = httpsPort,
            HttpPort = httpPort,
            ControlPort = controlPort,
            CertificateOutput = certOut,
            Quiet = quiet,
        };
    }

    private static int Port(string name, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 0 and <= 65535
            ? port
            : throw new ArgumentException($"{name} needs a port number (0 = any free port), got '{value}'");
}
