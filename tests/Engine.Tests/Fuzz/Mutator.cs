namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>
/// Seeded byte-level mutations of a valid input: bit flips, byte sets (random and boundary
/// values), truncation, extension, splicing with another seed, chunk duplication, deletion and
/// insertion. One generator per input, so an input is rebuilt from (seed, iteration) alone.
/// </summary>
internal static class Mutator
{
    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x04, 0x22, 0x4D, 0x18, 0x37, 0x7F, 0x06, 0x82, 0x83, 0x40];

    /// <summary>Applies 1 to 4 mutations; <paramref name="what"/> says which, for the failure report.</summary>
    public static byte[] Mutate(byte[] input, IReadOnlyList<byte[]> others, Random rng, out string what)
    {
        var data = new List<byte>(input);
        var steps = new List<string>();
        int count = 1 + rng.Next(rng.Next(2) == 0 ? 1 : 4);
        for (int k = 0; k < count; k++)
        {
            steps.Add(MutateOnce(data, others, rng));
        }

        what = string.Join(", ", steps);
        return data.ToArray();
    }

    private static string MutateOnce(List<byte> data, IReadOnlyList<byte[]> others, Random rng)
    {
        // Mutations near the start hit the headers (LZ4 frame header, WAL header) far more often
        // than a uniform choice would; half of the positions are drawn from the first 64 bytes.
        int Pos(int extra = 0)
        {
            int limit = Math.Max(1, data.Count + extra);
            return rng.Next(2) == 0 ? rng.Next(Math.Min(limit, 64)) : rng.Next(limit);
        }

        switch (rng.Next(10))
        {
            case 0:
            case 1:
                {
                    if (data.Count == 0) goto case 6;
                    int p = Pos();
                    int bit = rng.Next(8);
                    data[p] ^= (byte)(1 << bit);
                    return $"flip bit {bit} of byte {p}";
                }

            case 2:
                {
                    if (data.Count == 0) goto case 6;
                    int p = Pos();
                    byte v = rng.Next(2) == 0 ? Interesting[rng.Next(Interesting.Length)] : (byte)rng.Next(256);
                    data[p] = v;
                    return $"set byte {p} to 0x{v:x2}";
                }

            case 3:
                {
                    if (data.Count == 0) goto case 6;
                    int p = Pos();
                    int n = Math.Min(data.Count - p, 1 + rng.Next(8));
                    for (int i = 0; i < n; i++) data[p + i] = (byte)rng.Next(256);
                    return $"randomize {n} bytes at {p}";
                }

            case 4:
                {
                    int keep = rng.Next(3) == 0 ? Pos() : rng.Next(data.Count + 1);
                    data.RemoveRange(keep, data.Count - keep);
                    return $"truncate to {keep}";
                }

            case 5:
                {
                    int n = rng.Next(3) == 0 ? rng.Next(1, 70000) : rng.Next(1, 64);
                    bool zeros = rng.Next(2) == 0;
                    for (int i = 0; i < n; i++) data.Add(zeros ? (byte)0 : (byte)rng.Next(256));
                    return $"append {n} {(zeros ? "zero" : "random")} bytes";
                }

            case 6:
                {
                    if (others.Count == 0 || data.Count == 0) goto case 5;
                    var other = others[rng.Next(others.Count)];
                    int cut = rng.Next(data.Count + 1);
                    int from = rng.Next(other.Length + 1);
                    data.RemoveRange(cut, data.Count - cut);
                    data.AddRange(other.AsSpan(from).ToArray());
                    return $"splice at {cut} with another seed from {from}";
                }

            case 7:
                {
                    if (data.Count == 0) goto case 5;
                    int p = rng.Next(data.Count);
                    int n = Math.Min(data.Count - p, 1 + rng.Next(rng.Next(2) == 0 ? 32 : 8192));
                    int at = rng.Next(data.Count + 1);
                    var chunk = data.GetRange(p, n);
                    data.InsertRange(at, chunk);
                    return $"duplicate {n} bytes from {p} at {at}";
                }

            case 8:
                {
                    if (data.Count == 0) goto case 5;
                    int p = Pos();
                    int n = Math.Min(data.Count - p, 1 + rng.Next(rng.Next(2) == 0 ? 16 : 8192));
                    data.RemoveRange(p, n);
                    return $"delete {n} bytes at {p}";
                }

            default:
                {
                    int p = rng.Next(data.Count + 1);
                    int n = 1 + rng.Next(16);
                    var chunk = new byte[n];
                    rng.NextBytes(chunk);
                    data.InsertRange(p, chunk);
                    return $"insert {n} random bytes at {p}";
                }
        }
    }
}
