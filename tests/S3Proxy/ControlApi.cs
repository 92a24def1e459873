using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace S3Proxy;

/// <summary>The plain-HTTP control endpoints the tests call (see Program's usage text).</summary>
internal static class ControlApi
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };

    public static void Map(WebApplication app, RequestLog log, FaultInjector faults, IReadOnlyList<TcpRelay> relays)
    {
        app.MapGet("/health", () => Results.Text("ok"));
        app.MapGet("/counters", (HttpContext c) => WriteAsync(c, 200, log.Counters(faults)));
        app.MapGet("/requests", (HttpContext c) =>
        {
            int last = int.TryParse(c.Request.Query["last"], NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : 0;
            return WriteAsync(c, 200, log.Recent(last, c.Request.Query["operation"].ToString()));
        });
        app.MapPost("/reset", (HttpContext c) =>
        {
            log.Reset();
            faults.ResetCounts();
            return WriteAsync(c, 200, new { reset = true });
        });
        app.MapPost("/clear", (HttpContext c) =>
        {
            faults.Clear();
            return WriteAsync(c, 200, new { cleared = true, listening = relays.All(r => r.IsListening) });
        });
        app.MapPost("/fault", async (HttpContext c) =>
        {
            FaultRule? rule;
            try
            {
                rule = await JsonSerializer.DeserializeAsync<FaultRule>(c.Request.Body, Json, c.RequestAborted);
            }
            catch (JsonException e)
            {
                await WriteAsync(c, 400, new { error = "not a fault rule: " + e.Message });
                return;
            }

            string? problem = rule is null ? "empty body" : rule.Validate();
            if (rule is null || problem is not null)
            {
                await WriteAsync(c, 400, new { error = problem });
                return;
            }

            var added = faults.Add(rule);
            Console.Out.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} fault #{added.Id} added: {added} count={added.Count} match={added.Match ?? "*"}{(added.Path is null ? "" : " path=" + added.Path)}");
            await WriteAsync(c, 200, added);
        });
    }

    private static Task WriteAsync(HttpContext context, int status, object value)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(context.Response.Body, value, value.GetType(), Json, context.RequestAborted);
    }
}
