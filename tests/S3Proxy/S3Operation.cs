using Microsoft.AspNetCore.Http;

namespace S3Proxy;

/// <summary>
/// Names the S3 operation of a path-style request (<c>/bucket</c>, <c>/bucket/key</c>) from its
/// method, path and query, and sorts operations into the request kinds R2 bills.
/// </summary>
internal static class S3Operation
{
    public const string PutObject = "PutObject";
    public const string GetObject = "GetObject";
    public const string HeadObject = "HeadObject";
    public const string DeleteObject = "DeleteObject";
    public const string DeleteObjects = "DeleteObjects";
    public const string ListObjects = "ListObjects";
    public const string ListMultipartUploads = "ListMultipartUploads";
    public const string CreateMultipartUpload = "CreateMultipartUpload";
    public const string UploadPart = "UploadPart";
    public const string CompleteMultipartUpload = "CompleteMultipartUpload";
    public const string AbortMultipartUpload = "AbortMultipartUpload";

    public static string Classify(string method, string path, IQueryCollection query)
    {
        string trimmed = path.TrimStart('/');
        if (trimmed.Length == 0)
        {
            return method == "GET" ? "ListBuckets" : "Other";
        }

        int slash = trimmed.IndexOf('/');
        bool onObject = slash >= 0 && slash < trimmed.Length - 1;
        bool uploadId = query.ContainsKey("uploadId");
        if (!onObject)
        {
            return method switch
            {
                "GET" when query.ContainsKey("uploads") => ListMultipartUploads,
                "GET" when query.ContainsKey("location") => "GetBucketLocation",
                "GET" when query.ContainsKey("versioning") => "GetBucketVersioning",
                "GET" => ListObjects,
                "HEAD" => "HeadBucket",
                "PUT" => "CreateBucket",
                "DELETE" => "DeleteBucket",
                "POST" when query.ContainsKey("delete") => DeleteObjects,
                _ => "Other",
            };
        }

        return method switch
        {
            "PUT" when uploadId && query.ContainsKey("partNumber") => UploadPart,
            "PUT" => PutObject,
            "GET" when uploadId => "ListParts",
            "GET" => GetObject,
            "HEAD" => HeadObject,
            "DELETE" when uploadId => AbortMultipartUpload,
            "DELETE" => DeleteObject,
            "POST" when query.ContainsKey("uploads") => CreateMultipartUpload,
            "POST" when uploadId => CompleteMultipartUpload,
            _ => "Other",
        };
    }

    /// <summary>The request kinds of the product's own counters: put, get, head, list, delete, multipart, other.</summary>
    public static string Category(string operation) => operation switch
    {
        PutObject => "put",
        GetObject => "get",
        HeadObject or "HeadBucket" => "head",
        ListObjects or ListMultipartUploads or "ListParts" or "ListBuckets" => "list",
        DeleteObject or DeleteObjects => "delete",
        CreateMultipartUpload or UploadPart or CompleteMultipartUpload or AbortMultipartUpload => "multipart",
        _ => "other",
    };

    /// <summary>R2's billing class: A for writes, lists and multipart calls, B for reads.</summary>
    public static char BillingClass(string operation) => Category(operation) switch
    {
        "get" or "head" => 'B',
        _ => 'A',
    };
}
