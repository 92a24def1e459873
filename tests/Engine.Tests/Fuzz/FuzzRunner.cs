using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SqliteReplica.Engine.Errors;
using Xunit.Abstractions;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>One fuzz target: valid seed inputs and what to run on a (mutated) input.</summary>
internal sealed class FuzzTarget
{
    public required string Name { get; init; }

    /// <summary>Valid inputs; every mutated input starts from one of them.</summary>
    public required IReadOnlyList<byte[]> Seeds { get; init; }

    /// <summary>Runs one input. <c>seedIndex</c> says which seed it was mutated from (some targets put it in that seed's place).</summary>
    public required Func<int, byte[], Task> Run { get; init; }

    /// <summary>Optional: a structured mutation instead of a byte-level one (returns null to fall back).</summary>
    public Func<int, byte[], Random, (byte[] Input, string What)?>? Structured { get; init; }

    /// <summary>Inputs run at least, even past the time budget.</summary>
    public int MinimumInputs { get; init; } = 25;
}

/// <summary>
/// Runs a target against seeded random mutations of its seeds for a fixed time. The oracle: each
/// input either succeeds or throws <see cref="ReplicaException"/> with a code other than
/// <see cref="ReplicaErrorCode.Internal"/>, within a per-input timeout. Anything else (another
/// exception type, Internal, a hang) is a failure reported with the seed, the iteration, the
/// mutation and the input in hex.
/// </summary>
/// <remarks>
/// Environment: <c>SQLITEREPLICA_FUZZ_SECONDS</c> (time per target; default a short seeded run),
/// <c>SQLITEREPLICA_FUZZ_SEED</c> (default: fixed in the short run, random and printed in a long
/// one), <c>SQLITEREPLICA_FUZZ_TIMEOUT_SECONDS</c> (per input, default 20),
/// <c>SQLITEREPLICA_FUZZ_REPORT</c> (a file that receives one JSON line of figures per target),
/// <c>SQLITEREPLICA_FUZZ_REPLAY</c> (<c>seed:iteration</c>: run that one input only). Before
/// each input its bytes are written to <c>sqlitereplica-fuzz-&lt;target&gt;.input</c> in the temp
/// folder, so an input that kills the process (a stack overflow) is not lost.
/// </remarks>
internal static class FuzzRunner
{
    public const double ShortRunSeconds = 3;
    public const int ShortRunSeed = 20261126;

    public sealed record Failure(int Iteration, int SeedIndex, string Mutation, string Problem, byte[] Input);

    public sealed record Outcome(string Target, int Seed, double Seconds, long Inputs, long Succeeded, Dictionary<string, long> Errors, List<Failure> Failures, bool LongRun);

    public static Outcome Run(FuzzTarget target, ITestOutputHelper output)
    {
        var secondsText = Environment.GetEnvironmentVariable("SQLITEREPLICA_FUZZ_SECONDS");
        bool longRun = !string.IsNullOrWhiteSpace(secondsText);
        double seconds = longRun ? double.Parse(secondsText!, CultureInfo.InvariantCulture) : ShortRunSeconds;
        var seedText = Environment.GetEnvironmentVariable("SQLITEREPLICA_FUZZ_SEED");
        int seed = !string.IsNullOrWhiteSpace(seedText) ? int.Parse(seedText, CultureInfo.InvariantCulture)
            : longRun ? Random.Shared.Next(1, int.MaxValue) : ShortRunSeed;
        var timeoutText = Environment.GetEnvironmentVariable("SQLITEREPLICA_FUZZ_TIMEOUT_SECONDS");
        var timeout = TimeSpan.FromSeconds(string.IsNullOrWhiteSpace(timeoutText) ? 20 : double.Parse(timeoutText, CultureInfo.InvariantCulture));
        int? only = null;
        var replay = Environment.GetEnvironmentVariable("SQLITEREPLICA_FUZZ_REPLAY");
        if (!string.IsNullOrWhiteSpace(replay))
        {
            var parts = replay.Split(':');
            seed = int.Parse(parts[0], CultureInfo.InvariantCulture);
            only = int.Parse(parts[1], CultureInfo.InvariantCulture);
        }

        // SQLITEREPLICA_FUZZ_INPUT=<file>[:<seed index>]: run exactly those bytes (a failure's .bin file).
        byte[]? replayInput = null;
        int replaySeedIndex = 0;
        var inputText = Environment.GetEnvironmentVariable("SQLITEREPLICA_FUZZ_INPUT");
        if (!string.IsNullOrWhiteSpace(inputText))
        {
            var colon = inputText.LastIndexOf(':');
            if (colon > 0 && int.TryParse(inputText[(colon + 1)..], CultureInfo.InvariantCulture, out var si))
            {
                replaySeedIndex = si;
                inputText = inputText[..colon];
            }

            replayInput = File.ReadAllBytes(inputText);
            only = 0;
        }

        output.WriteLine($"fuzz {target.Name}: seed {seed}, {seconds:F0} s, per-input timeout {timeout.TotalSeconds:F0} s, {target.Seeds.Count} seed input(s)");
        var breadcrumb = Path.Combine(Path.GetTempPath(), $"sqlitereplica-fuzz-{target.Name}.input");
        var errors = new Dictionary<string, long>(StringComparer.Ordinal);
        var failures = new List<Failure>();
        long inputs = 0, succeeded = 0;
        var clock = Stopwatch.StartNew();
        for (int iteration = only ?? 0; ; iteration++)
        {
            if (only is not null ? iteration > only : clock.Elapsed.TotalSeconds >= seconds && inputs >= target.MinimumInputs)
            {
                break;
            }

            // Not HashCode.Combine: it is randomized per process, and a replay must rebuild the input.
            var rng = new Random((int)(((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)iteration * 0xBF58476D1CE4E5B9UL) >> 33));
            int seedIndex = rng.Next(target.Seeds.Count);
            byte[] input;
            string what;
            // Iteration 0 of every run is the unmutated first seed: the target itself must work.
            if (replayInput is not null)
            {
                seedIndex = replaySeedIndex;
                input = replayInput;
                what = "replayed input";
            }
            else if (iteration == 0)
            {
                seedIndex = 0;
                input = target.Seeds[0];
                what = "none (the seed itself)";
            }
            else if (target.Structured is not null && rng.Next(2) == 0 && target.Structured(seedIndex, target.Seeds[seedIndex], rng) is { } s)
            {
                (input, what) = s;
            }
            else
            {
                input = Mutator.Mutate(target.Seeds[seedIndex], target.Seeds, rng, out what);
            }

            File.WriteAllBytes(breadcrumb, input);
            inputs++;
            string? problem = null;
            var task = Task.Run(() => target.Run(seedIndex, input));
            bool finished;
            try
            {
                finished = task.Wait(timeout);
            }
            catch (AggregateException)
            {
                finished = true;
            }

            if (!finished)
            {
                problem = $"no result within {timeout.TotalSeconds:F0} s (a hang)";
            }
            else if (task.Exception?.InnerException is { } e)
            {
                if (e is ReplicaException re && re.Code != ReplicaErrorCode.Internal)
                {
                    errors[re.Code.ToString()] = errors.GetValueOrDefault(re.Code.ToString()) + 1;
                }
                else
                {
                    problem = e is ReplicaException ie ? $"ReplicaException with code Internal: {ie.Message}" : $"{e.GetType().FullName}: {e.Message}\n{e.StackTrace}";
                }
            }
            else
            {
                succeeded++;
            }

            if (problem is not null)
            {
                failures.Add(new Failure(iteration, seedIndex, what, problem, input));
                if (!finished || failures.Count >= 20)
                {
                    // A hung input keeps its thread; stop this target rather than pile them up.
                    break;
                }
            }
        }

        File.Delete(breadcrumb);
        var outcome = new Outcome(target.Name, seed, Math.Round(clock.Elapsed.TotalSeconds, 1), inputs, succeeded, errors, failures, longRun);
        output.WriteLine($"fuzz {target.Name}: {inputs} inputs in {outcome.Seconds:F1} s, {succeeded} succeeded, errors {string.Join(", ", errors.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}, {failures.Count} failure(s)");
        WriteReport(outcome);
        return outcome;
    }

    /// <summary>Asserts that the run had no failure; the message carries everything needed to replay the first ones.</summary>
    public static void AssertNoFailures(Outcome outcome)
    {
        if (outcome.Failures.Count == 0)
        {
            return;
        }

        var sb = new StringBuilder();
        sb.AppendLine($"fuzz {outcome.Target}: {outcome.Failures.Count} failure(s) in {outcome.Inputs} inputs, seed {outcome.Seed}. Replay one with SQLITEREPLICA_FUZZ_REPLAY={outcome.Seed}:<iteration>, or its exact bytes with SQLITEREPLICA_FUZZ_INPUT=<file>:<seed input> (every seed, WAL ones included, is the same bytes on every run).");
        foreach (var f in outcome.Failures.Take(3))
        {
            sb.AppendLine($"--- iteration {f.Iteration} (SQLITEREPLICA_FUZZ_REPLAY={outcome.Seed}:{f.Iteration}), seed input {f.SeedIndex}, mutation: {f.Mutation}");
            sb.AppendLine(f.Problem);
            var file = Path.Combine(Path.GetTempPath(), $"sqlitereplica-fuzz-{outcome.Target}-{outcome.Seed}-{f.Iteration}.bin");
            File.WriteAllBytes(file, f.Input);
            const int MaxHex = 64 * 1024;
            sb.AppendLine($"input ({f.Input.Length} bytes, also in {file}; SQLITEREPLICA_FUZZ_INPUT={file}:{f.SeedIndex}) hex{(f.Input.Length > MaxHex ? $" (first {MaxHex} bytes)" : "")}:");
            sb.AppendLine(Convert.ToHexString(f.Input.AsSpan(0, Math.Min(f.Input.Length, MaxHex))));
        }

        Assert.Fail(sb.ToString());
    }

    private static void WriteReport(Outcome outcome)
    {
        var path = Environment.GetEnvironmentVariable("SQLITEREPLICA_FUZZ_REPORT");
        if (string.IsNullOrWhiteSpace(path))
        {
            return;
        }

        var line = JsonSerializer.Serialize(new
        {
            target = outcome.Target,
            seed = outcome.Seed,
            seconds = outcome.Seconds,
            inputs = outcome.Inputs,
            succeeded = outcome.Succeeded,
            errors = outcome.Errors,
            failures = outcome.Failures.Count,
            firstFailure = outcome.Failures.Count > 0 ? $"iteration {outcome.Failures[0].Iteration}, {outcome.Failures[0].Mutation}: {outcome.Failures[0].Problem.Split('\n')[0]}" : null,
        });
        lock (typeof(FuzzRunner))
        {
            File.AppendAllText(path, line + "\n");
        }
    }
}
