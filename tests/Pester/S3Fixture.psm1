#Requires -Version 7.4
<#
.SYNOPSIS
    The S3 test fixture: moto_server on loopback, and the S3 test proxy (tests/S3Proxy) in front
    of it over HTTPS, which refuses what Cloudflare R2 refuses, counts requests by operation and
    injects faults on demand.

.DESCRIPTION
    Start-MotoServer        moto_server on a free loopback port; returns Endpoint, Port, Process
    New-S3Bucket            creates a bucket with a plain PUT /<bucket> (moto or the proxy)
    Start-S3Proxy           the built proxy in front of an upstream; returns Endpoint (https://...),
                            HttpEndpoint (with -Http), ControlUrl, Process, LogPath
    Set-S3Fault             adds a fault rule (status, reset, stall, truncate, down)
    Clear-S3Fault           removes every rule (and ends a 'down' spell)
    Get-S3Counters          counts by operation, payload signing, faults, rejected requests (-Reset zeroes them after reading)
    Reset-S3Counters        zeroes the counters and the request log
    Get-S3ProxyRequest      the proxy's recent request records (the request dump for bug reports)
    Stop-S3Fixture          stops the fixture's processes (SIGTERM, then SIGKILL)

    The proxy is found through SQLITEREPLICA_S3PROXY (its apphost, its .dll, or the folder
    holding them), else at out/tools/S3Proxy under the repository root. Build it with
    'dotnet publish tests/S3Proxy -c Release -o out/tools/S3Proxy'.

    Processes run in their own process groups through TestHelpers' Start-TestProcess, so
    Stop-TestProcess -All (or removing TestHelpers) also cleans them up.
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

# The already loaded TestHelpers instance if there is one, so that processes started here are
# tracked in the same list the tests clean up.
Import-Module -Name (Join-Path $PSScriptRoot 'TestHelpers.psm1')

$script:FixtureProcesses = [System.Collections.Generic.List[object]]::new()
$script:RepoRoot = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../..'))

#region Internal helpers

function Get-FreeTcpPort {
    # A loopback port that was free a moment ago (the OS picks it).
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Invoke-FixtureHttp {
    # One HTTP request without PowerShell's web cmdlets' retries or certificate checks; returns
    # Status and Body (text). Never throws for an HTTP status.
    param(
        [Parameter(Mandatory)][string]$Method,
        [Parameter(Mandatory)][string]$Uri,
        [string]$Body,
        [double]$TimeoutSeconds = 10
    )
    $handler = [System.Net.Http.SocketsHttpHandler]::new()
    $handler.UseProxy = $false
    $handler.SslOptions.RemoteCertificateValidationCallback = { $true }
    $client = [System.Net.Http.HttpClient]::new($handler)
    $client.Timeout = [TimeSpan]::FromSeconds($TimeoutSeconds)
    try {
        $request = [System.Net.Http.HttpRequestMessage]::new([System.Net.Http.HttpMethod]::new($Method), $Uri)
        if ($PSBoundParameters.ContainsKey('Body')) {
            $request.Content = [System.Net.Http.StringContent]::new($Body, [System.Text.Encoding]::UTF8, 'application/json')
        }
        $response = $client.SendAsync($request).GetAwaiter().GetResult()
        [pscustomobject]@{
            Status = [int]$response.StatusCode
            Body   = $response.Content.ReadAsStringAsync().GetAwaiter().GetResult()
        }
    }
    finally {
        $client.Dispose()
    }
}

function ConvertTo-FullPathForFixture {
    param([Parameter(Mandatory)][string]$Path)
    $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Path)
}

function Resolve-ControlUrl {
    param([Parameter(Mandatory)][object]$Proxy)
    if ($Proxy -is [string]) { return $Proxy.TrimEnd('/') }
    $Proxy.ControlUrl
}

function Invoke-Control {
    param(
        [Parameter(Mandatory)][object]$Proxy,
        [Parameter(Mandatory)][string]$Method,
        [Parameter(Mandatory)][string]$Path,
        [string]$Body
    )
    $uri = (Resolve-ControlUrl $Proxy) + $Path
    $arguments = @{ Method = $Method; Uri = $uri }
    if ($PSBoundParameters.ContainsKey('Body')) { $arguments.Body = $Body }
    $response = Invoke-FixtureHttp @arguments
    if ($response.Status -ne 200) {
        throw "The S3 proxy's control API answered $($response.Status) to $Method $uri : $($response.Body)"
    }
    $response.Body | ConvertFrom-Json -Depth 20
}

function Find-S3ProxyCommand {
    # FilePath and PrefixArguments to run the proxy (apphost, or its .dll through dotnet).
    $candidates = [System.Collections.Generic.List[string]]::new()
    $configured = $env:SQLITEREPLICA_S3PROXY
    if (-not [string]::IsNullOrWhiteSpace($configured)) {
        if (Test-Path -LiteralPath $configured -PathType Container) {
            $candidates.Add((Join-Path $configured 'S3Proxy'))
            $candidates.Add((Join-Path $configured 'S3Proxy.dll'))
        }
        elseif (Test-Path -LiteralPath $configured -PathType Leaf) {
            $candidates.Add($configured)
        }
        else {
            throw "SQLITEREPLICA_S3PROXY points to '$configured', which does not exist."
        }
    }
    else {
        $folder = Join-Path $script:RepoRoot 'out/tools/S3Proxy'
        $candidates.Add((Join-Path $folder 'S3Proxy'))
        $candidates.Add((Join-Path $folder 'S3Proxy.dll'))
    }
    foreach ($path in $candidates) {
        if (-not (Test-Path -LiteralPath $path -PathType Leaf)) { continue }
        $full = [System.IO.Path]::GetFullPath($path)
        if ($full.EndsWith('.dll', [StringComparison]::OrdinalIgnoreCase)) {
            $processPath = [Environment]::ProcessPath
            $dotnet = if ([System.IO.Path]::GetFileNameWithoutExtension($processPath) -eq 'dotnet') { $processPath } else { (Get-Command -Name dotnet -CommandType Application | Select-Object -First 1).Source }
            return [pscustomobject]@{ FilePath = $dotnet; PrefixArguments = [string[]]@($full) }
        }
        return [pscustomobject]@{ FilePath = $full; PrefixArguments = [string[]]@() }
    }
    throw "The S3 test proxy was not found (looked for: $($candidates -join ', ')). Build it with 'dotnet publish tests/S3Proxy -c Release -o out/tools/S3Proxy', or set SQLITEREPLICA_S3PROXY."
}

#endregion

function Start-MotoServer {
    <#
    .SYNOPSIS
        Starts moto_server on a free loopback port, waits until it answers, and returns Endpoint (http://127.0.0.1:<port>), Port and Process.
    .DESCRIPTION
        Creates no bucket. The process runs in its own process group (Start-TestProcess); stop it
        with Stop-S3Fixture. moto accepts any credentials and does not check signatures.
    #>
    [CmdletBinding()]
    param(
        [string]$LogPath,
        [double]$TimeoutSeconds = 30
    )
    $moto = Get-Command -Name moto_server -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $moto) { throw 'moto_server is not on PATH; the S3 tests need it (Python moto 5.x: pip install "moto[server]").' }
    if (-not $LogPath) { $LogPath = Join-Path (New-TestDirectory -Prefix 'moto') 'moto.log' }
    for ($attempt = 1; ; $attempt++) {
        $port = Get-FreeTcpPort
        $process = Start-TestProcess -FilePath $moto.Source -ArgumentList @('-H', '127.0.0.1', '-p', $port) -LogPath $LogPath -Name 'moto_server'
        $script:FixtureProcesses.Add($process)
        $endpoint = "http://127.0.0.1:$port"
        try {
            $null = Wait-Until -TimeoutSeconds $TimeoutSeconds -IntervalMilliseconds 100 -Message "moto_server answering at $endpoint" -Condition {
                if ($process.HasExited) { throw "moto_server exited with code $($process.ExitCode): $(Get-LogTail -Path $LogPath -Lines 10)" }
                (Invoke-FixtureHttp -Method GET -Uri "$endpoint/" -TimeoutSeconds 2).Status -gt 0
            }
            break
        }
        catch {
            $null = $process | Stop-TestProcess -Signal KILL -TimeoutSeconds 5
            # Another process may have taken the port between the probe and moto's bind.
            if ($attempt -ge 3 -or (Get-LogTail -Path $LogPath) -notmatch 'Address already in use') { throw }
        }
    }
    [pscustomobject]@{
        PSTypeName = 'SqliteReplica.Tests.MotoServer'
        Endpoint   = $endpoint
        Port       = $port
        Process    = $process
        LogPath    = $LogPath
    }
}

function New-S3Bucket {
    <#
    .SYNOPSIS
        Creates a bucket with a plain 'PUT /<name>' against an S3 endpoint (moto directly, or the proxy); throws unless it answers 200.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][string]$Endpoint,
        [Parameter(Mandatory)][ValidatePattern('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')][string]$Name
    )
    $response = Invoke-FixtureHttp -Method PUT -Uri ($Endpoint.TrimEnd('/') + '/' + $Name)
    if ($response.Status -ne 200) {
        throw "Creating bucket '$Name' at $Endpoint failed with HTTP $($response.Status): $($response.Body)"
    }
    $Name
}

function Start-S3Proxy {
    <#
    .SYNOPSIS
        Starts the S3 test proxy in front of -Upstream and returns Endpoint (https://127.0.0.1:<port>), ControlUrl, Process and LogPath.
    .DESCRIPTION
        The proxy serves HTTPS with a self-signed certificate made at start-up (clients need
        skip-verify, or SSL_CERT_FILE=<CertificatePath> in their environment), picks free ports,
        and logs one line per request into LogPath. -Http adds a plain-HTTP front (HttpEndpoint).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][string]$Upstream,
        [switch]$Http,
        [string]$LogPath,
        [double]$TimeoutSeconds = 30
    )
    $command = Find-S3ProxyCommand
    if (-not $LogPath) { $LogPath = Join-Path (New-TestDirectory -Prefix 's3proxy') 's3proxy.log' }
    $LogPath = ConvertTo-FullPathForFixture $LogPath
    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($LogPath))
    $certificate = Join-Path ([System.IO.Path]::GetDirectoryName($LogPath)) 's3proxy-cert.pem'
    $arguments = @($command.PrefixArguments) + @('--upstream', $Upstream, '--https-port', '0', '--control-port', '0', '--cert-out', $certificate)
    if ($Http) { $arguments += @('--http-port', '0') }
    $process = Start-TestProcess -FilePath $command.FilePath -ArgumentList $arguments -LogPath $LogPath -Name 's3proxy'
    $script:FixtureProcesses.Add($process)
    try {
        $ready = Wait-LogLine -Path $LogPath -Pattern '^listening https=(?<https>\d+) control=(?<control>\d+)(?: http=(?<http>\d+))?' -TimeoutSeconds $TimeoutSeconds -Process $process
    }
    catch {
        $null = $process | Stop-TestProcess -Signal KILL -TimeoutSeconds 5
        throw
    }
    [pscustomobject]@{
        PSTypeName      = 'SqliteReplica.Tests.S3Proxy'
        Endpoint        = "https://127.0.0.1:$($ready.Groups['https'].Value)"
        HttpEndpoint    = if ($ready.Groups['http'].Success) { "http://127.0.0.1:$($ready.Groups['http'].Value)" } else { $null }
        ControlUrl      = "http://127.0.0.1:$($ready.Groups['control'].Value)"
        Upstream        = $Upstream
        # The proxy's self-signed certificate (PEM): a child process given SSL_CERT_FILE=<this>
        # trusts it, so it can connect without skip-verify.
        CertificatePath = $certificate
        Process         = $process
        LogPath         = $LogPath
    }
}

function Set-S3Fault {
    <#
    .SYNOPSIS
        Adds a fault rule to the proxy and returns it (with its Id).
    .DESCRIPTION
        Kinds: status (-Status, -Code), reset (TCP RST instead of an answer), stall (hold the
        request -Seconds before forwarding it; with -Count -1 a fixed latency), truncate (send
        half of a GET body's declared Content-Length, then close; with -Seconds, keep the silent
        connection open that long first), down (refuse connections for -Seconds, or until
        Clear-S3Fault). -Count requests are hit (-1: until cleared). -Match selects by S3
        operation or HTTP method (comma-separated, e.g. 'PutObject,UploadPart' or 'PUT');
        -PathContains by a substring of the path; -Skip lets that many matching requests through first.
    .EXAMPLE
        Set-S3Fault -Proxy $proxy -Kind status -Status 503 -Code SlowDown -Count 3 -Match PUT
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][object]$Proxy,
        [Parameter(Mandatory)][ValidateSet('status', 'reset', 'stall', 'truncate', 'down')][string]$Kind,
        [int]$Status,
        [string]$Code,
        [string]$Message,
        [int]$Count = 1,
        [string]$Match,
        [string]$PathContains,
        [double]$Seconds,
        [int]$Skip
    )
    $rule = [ordered]@{ kind = $Kind; count = $Count }
    if ($PSBoundParameters.ContainsKey('Status')) { $rule.status = $Status }
    if ($Code) { $rule.code = $Code }
    if ($Message) { $rule.message = $Message }
    if ($Match) { $rule.match = $Match }
    if ($PathContains) { $rule.path = $PathContains }
    if ($PSBoundParameters.ContainsKey('Seconds')) { $rule.seconds = $Seconds }
    if ($Skip) { $rule.skip = $Skip }
    Invoke-Control -Proxy $Proxy -Method POST -Path '/fault' -Body ($rule | ConvertTo-Json -Compress)
}

function Clear-S3Fault {
    <#
    .SYNOPSIS
        Removes every fault rule of the proxy and brings a 'down' endpoint back up.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][object]$Proxy)
    $null = Invoke-Control -Proxy $Proxy -Method POST -Path '/clear'
}

function Get-S3Counters {
    <#
    .SYNOPSIS
        Returns the proxy's counters: total, inFlight, classA, classB, operations (by S3 operation), categories (put/get/head/list/delete/multipart/other), payload (unsigned/signed/streaming/none for PutObject and UploadPart), maxPartsInFlight, faults, rejected (count, reasons, requests with their headers).
    .DESCRIPTION
        A missing operation has no property: read counts with Get-S3OperationCount, or
        '$c.operations.PutObject ?? 0' under StrictMode-free code. -Reset zeroes the counters
        after reading them.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][object]$Proxy,
        [switch]$Reset
    )
    $counters = Invoke-Control -Proxy $Proxy -Method GET -Path '/counters'
    if ($Reset) { Reset-S3Counters -Proxy $Proxy }
    $counters
}

function Get-S3OperationCount {
    <#
    .SYNOPSIS
        Reads one count from Get-S3Counters output: an S3 operation (PutObject...) or, with -Category, a request kind (put, get, list...); 0 when absent.
    #>
    [CmdletBinding()]
    [OutputType([long])]
    param(
        [Parameter(Mandatory, Position = 0)][object]$Counters,
        [Parameter(Mandatory, Position = 1)][string]$Name,
        [switch]$Category
    )
    $bag = if ($Category) { $Counters.categories } else { $Counters.operations }
    $property = $bag.PSObject.Properties[$Name]
    if ($property) { [long]$property.Value } else { 0L }
}

function Reset-S3Counters {
    <#
    .SYNOPSIS
        Zeroes the proxy's counters and request log (fault rules stay).
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][object]$Proxy)
    $null = Invoke-Control -Proxy $Proxy -Method POST -Path '/reset'
}

function Get-S3ProxyRequest {
    <#
    .SYNOPSIS
        Returns the proxy's recent request records (id, time, atMs, method, target, operation, payload, headers, status, durationMs, fault, rejected, note), oldest first.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][object]$Proxy,
        [int]$Last = 0,
        [string]$Operation
    )
    $query = "?last=$Last"
    if ($Operation) { $query += '&operation=' + [uri]::EscapeDataString($Operation) }
    $records = Invoke-Control -Proxy $Proxy -Method GET -Path "/requests$query"
    # ConvertFrom-Json would enumerate an array; keep one object per record.
    foreach ($record in @($records)) { $record }
}

function Stop-S3Fixture {
    <#
    .SYNOPSIS
        Stops fixture processes: the given ones (a Start-MotoServer or Start-S3Proxy result, or a TestProcess), or with -All every one this module started.
    #>
    [CmdletBinding(DefaultParameterSetName = 'One')]
    param(
        [Parameter(Mandatory, ParameterSetName = 'One', Position = 0, ValueFromPipeline)][object[]]$InputObject,
        [Parameter(Mandatory, ParameterSetName = 'All')][switch]$All
    )
    process {
        $targets = if ($All) { @($script:FixtureProcesses) } else {
            foreach ($item in $InputObject) { if ($item.PSObject.Properties['Process'] -and $item.Process -isnot [System.Diagnostics.Process]) { $item.Process } else { $item } }
        }
        foreach ($target in $targets) {
            if ($null -eq $target) { continue }
            $null = $target | Stop-TestProcess -Signal TERM -TimeoutSeconds 10
            $null = $script:FixtureProcesses.Remove($target)
        }
    }
}

Export-ModuleMember -Function @(
    'Start-MotoServer'
    'New-S3Bucket'
    'Start-S3Proxy'
    'Set-S3Fault'
    'Clear-S3Fault'
    'Get-S3Counters'
    'Get-S3OperationCount'
    'Reset-S3Counters'
    'Get-S3ProxyRequest'
    'Stop-S3Fixture'
    'Invoke-FixtureHttp'
)
