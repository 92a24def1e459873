namespace SqliteReplica.Engine.Replicas.S3;

/// <summary>Go's path.Join and path.Clean, which Litestream uses to build object keys.</summary>
public static class GoPath
{
    public static string Join(params string[] parts)
    {
        var joined = string.Join('/', parts.Where(p => !string.IsNullOrEmpty(p)));
        return joined.Length == 0 ? "" : Clean(joined);
    }

    public static string Clean(string path)
    {
        if (path.Length == 0)
        {
            return ".";
        }

        bool rooted = path[0] == '/';
        var stack = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (stack.Count > 0 && stack[^1] != "..")
                {
                    stack.RemoveAt(stack.Count - 1);
                }
                else if (!rooted)
                {
                    stack.Add("..");
                }

                continue;
            }

            stack.Add(part);
        }

        var result = (rooted ? "/" : "") + string.Join('/', stack);
        return result.Length == 0 ? "." : result;
    }
}
