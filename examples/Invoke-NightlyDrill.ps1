#Requires -Version 7.6
#Requires -Modules SqliteReplica

<#
.SYNOPSIS
    The nightly restore drill: Test-ReplicaRestore for every database of a litestream.yml; exits 0
    only when every drill Passed, else 1.

.DESCRIPTION
    Runs Test-ReplicaRestore -ConfigPath -DatabasePath for each configured database, one after
    the other: the replica is restored into scratch, checked with PRAGMA integrity_check, and
    compared table by table with the live database at the same point (see docs/restore-drill.md).
    The live database is only read.

    Results:
      - one line per database on the information stream (the console, or the journal under
        systemd), e.g. "Passed  /srv/app/data.db  at <generation>/<index>:<offset>, lag 0.4s";
        it does not depend on the console width, unlike a table in a redirected session;
      - with -PassThru, the ReplicaDrillResult objects are the output;
      - with -ResultPath, one JSON line per database is appended to that file (time, database,
        status, reason, restored position, lag, and each check's outcome), for dashboards and
        for "when did it last pass?";
      - a failed drill is also written as an error (DrillFailed) to stderr.

    Exit code: 0 when every database Passed; 1 when any drill Failed, was Skipped, or could not
    run at all (an unreadable config, a replica that cannot be reached...). A drill that was not
    done is not a pass.

.PARAMETER ConfigPath
    The litestream.yml that lists the databases and their replicas (default /etc/litestream.yml).

.PARAMETER ResultPath
    A JSON Lines file to append one line per database to (created with its folder if missing).

.PARAMETER PassThru
    Output the ReplicaDrillResult objects (for a caller that inspects them).

.PARAMETER MaxLag
    How long the replica may take to hold the live point (Test-ReplicaRestore -MaxLag; default
    1 minute: a stopped replicator fails the drill).

.EXAMPLE
    pwsh -NoProfile -NonInteractive -File ./Invoke-NightlyDrill.ps1 -ConfigPath /etc/litestream.yml -ResultPath /var/log/sqlitereplica/drill.jsonl

    One run; $LASTEXITCODE (or the unit's exit status) is 0 only if every database passed.

.EXAMPLE
    # /etc/systemd/system/sqlitereplica-drill.service
    [Unit]
    Description=SqliteReplica nightly restore drill
    OnFailure=notify-admin@%n.service

    [Service]
    Type=oneshot
    EnvironmentFile=/etc/sqlitereplica.env
    ExecStart=/usr/bin/pwsh -NoProfile -NonInteractive -File /opt/sqlitereplica/Invoke-NightlyDrill.ps1 -ConfigPath /etc/litestream.yml -ResultPath /var/log/sqlitereplica/drill.jsonl

    # /etc/systemd/system/sqlitereplica-drill.timer
    [Timer]
    OnCalendar=*-*-* 03:30:00
    RandomizedDelaySec=15m
    Persistent=true

    [Install]
    WantedBy=timers.target

    The scheduled job: `systemctl enable --now sqlitereplica-drill.timer`. A failing drill fails
    the unit (exit 1), which `systemctl --failed`, OnFailure= and monitoring see.
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty()]
    [string] $ConfigPath = '/etc/litestream.yml',

    [string] $ResultPath,

    [TimeSpan] $MaxLag = [TimeSpan]::FromMinutes(1),

    [switch] $PassThru
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

function Write-DrillLine {
    param([Parameter(Mandatory)][System.Collections.IDictionary] $Line)
    if (-not $ResultPath) { return }
    $folder = Split-Path -Parent $ResultPath
    if ($folder -and -not (Test-Path -LiteralPath $folder)) {
        $null = New-Item -ItemType Directory -Path $folder -Force
    }
    Add-Content -LiteralPath $ResultPath -Value ($Line | ConvertTo-Json -Compress -Depth 4) -Encoding utf8NoBOM
}

if ($ResultPath) {
    $ResultPath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($ResultPath)
}
$startedAt = [DateTimeOffset]::UtcNow.ToString('o')
$failures = 0

try {
    $ConfigPath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($ConfigPath)
    # Every configured database, replicated or not (the status cmdlet lists them all).
    $databases = @(@(Get-SqliteReplicationStatus -ConfigPath $ConfigPath).DatabasePath | Select-Object -Unique)
    if ($databases.Count -eq 0) {
        throw "'$ConfigPath' lists no databases."
    }
}
catch {
    Write-Error -ErrorRecord $_ -ErrorAction Continue
    Write-DrillLine ([ordered]@{ Time = $startedAt; ConfigPath = $ConfigPath; DatabasePath = $null; Status = 'Failed'; Reason = "the drill could not start: $($_.Exception.Message)" })
    exit 1
}

foreach ($database in $databases) {
    $drillErrors = $null
    $result = $null
    try {
        # A failed drill writes DrillFailed: shown on stderr, and the result says why.
        $result = Test-ReplicaRestore -ConfigPath $ConfigPath -DatabasePath $database -MaxLag $MaxLag -ErrorAction Continue -ErrorVariable drillErrors
    }
    catch {
        $drillErrors = @($_)
        Write-Error -ErrorRecord $_ -ErrorAction Continue
    }

    if ($result) {
        $lag = if ($null -ne $result.Lag) { ', lag {0:N1}s' -f $result.Lag.TotalSeconds } else { '' }
        $at = if ($result.RestoredPosition) { "at $($result.RestoredPosition)$lag" } else { "($($result.Reason))" }
        Write-Host ('{0,-7} {1}  {2}' -f $result.Status, $database, $at)
        if ($PassThru) { $result }
        Write-DrillLine ([ordered]@{
                Time             = $startedAt
                ConfigPath       = $ConfigPath
                DatabasePath     = $database
                Status           = $result.Status
                Reason           = $result.Reason
                RestoredPosition = $result.RestoredPosition
                LagSeconds       = if ($null -ne $result.Lag) { $result.Lag.TotalSeconds } else { $null }
                DurationSeconds  = $result.Duration.TotalSeconds
                Checks           = @($result.Checks | ForEach-Object { [ordered]@{ Name = $_.Name; Outcome = $_.Outcome; Detail = $_.Detail } })
            })
        if ($result.Status -ne 'Passed') { $failures++ }
    }
    else {
        # The drill could not even start for this database (its error is already on stderr).
        $failures++
        $reason = (@($drillErrors) | ForEach-Object { "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" }) -join '; '
        Write-Host ('{0,-7} {1}  (the drill did not run)' -f 'Failed', $database)
        Write-DrillLine ([ordered]@{ Time = $startedAt; ConfigPath = $ConfigPath; DatabasePath = $database; Status = 'Failed'; Reason = "the drill did not run: $reason" })
    }
}

if ($failures -gt 0) {
    Write-Warning "$failures of $($databases.Count) restore drill(s) did not pass."
    exit 1
}
Write-Host "All $($databases.Count) restore drill(s) passed."
exit 0
