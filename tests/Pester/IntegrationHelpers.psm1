#Requires -Version 7.6
<#
.SYNOPSIS
    Helpers shared by the integration tests (Replication, Compatibility, CrashSafety,
    RestoreErrors): the replicator in a separate pwsh with machine-readable results,
    replica positions, fresh restore targets and replica copies.

.DESCRIPTION
    Builds on TestHelpers.psm1 (import that first): processes are started through
    Start-PwshProcess, so they are tracked and cleaned up by Stop-TestProcess -All.

    The replicator log written by Start-TestReplicator holds, besides the cmdlet's
    'VERBOSE: ...' and 'WARNING: ...' lines:
      SUMMARY {json}      one per ReplicationSummary written when the cmdlet ends
      ERRORID <id>        the FullyQualifiedErrorId of an error the cmdlet wrote or threw
    and the child exits 1 when the cmdlet failed.
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

# The already loaded TestHelpers instance if there is one (no -Force), so that the
# processes started here are tracked in the same list the tests clean up.
Import-Module -Name (Join-Path $PSScriptRoot 'TestHelpers.psm1')

$script:PositionPattern = '(?<gen>[0-9a-f]{16})/(?<idx>[0-9a-f]{8}):(?<off>\d+)'

function ConvertTo-SingleQuoted {
    param([AllowEmptyString()][string]$Value)
    "'" + $Value.Replace("'", "''") + "'"
}

function Start-TestReplicator {
    <#
    .SYNOPSIS
        Runs Start-SqliteReplication in a separate pwsh (own process group) and waits until it is replicating.
    .DESCRIPTION
        Same child as TestHelpers' Start-ReplicatorProcess (module from
        $env:SQLITEREPLICA_MODULE, parameters as CLIXML, -Verbose into the log), but
        every record is rendered as one plain line and the cmdlet's summaries and
        error ids are written as 'SUMMARY {json}' and 'ERRORID <id>' lines, and the
        child exits 1 when the cmdlet fails.

        Defaults for speed: MonitorInterval 100ms, SyncInterval 200ms (override
        through -Parameters). Unless -NoWait, waits (up to -TimeoutSeconds) for the
        'replicating ... to ... replica' line, i.e. until the module is loaded and
        the cmdlet started; fails at once if the child exits before.
    .EXAMPLE
        $r = Start-TestReplicator -DatabasePath $db -ReplicaPath $replica -LogPath "$TestDrive/r.log"
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][string]$DatabasePath,
        [string]$ReplicaPath,
        [string]$ReplicaUrl,
        [hashtable]$Parameters = @{},
        [Parameter(Mandatory)][string]$LogPath,
        [double]$TimeoutSeconds = 60,
        [switch]$NoWait
    )
    $modulePath = $env:SQLITEREPLICA_MODULE
    if ([string]::IsNullOrWhiteSpace($modulePath) -or -not (Test-Path -LiteralPath $modulePath -PathType Leaf)) {
        throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$modulePath')."
    }
    $all = @{ DatabasePath = $DatabasePath; MonitorInterval = '100ms'; SyncInterval = '200ms' }
    if ($ReplicaPath) { $all.ReplicaPath = $ReplicaPath }
    if ($ReplicaUrl) { $all.ReplicaUrl = $ReplicaUrl }
    foreach ($key in $Parameters.Keys) { $all[$key] = $Parameters[$key] }

    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($LogPath))
    $parametersPath = "$LogPath.parameters.xml"
    $all | Export-Clixml -LiteralPath $parametersPath -Depth 5
    $script = @"
Import-Module -Name $(ConvertTo-SingleQuoted $modulePath) -ErrorAction Stop
`$parameters = Import-Clixml -LiteralPath $(ConvertTo-SingleQuoted $parametersPath)
`$failed = `$false
try {
    Start-SqliteReplication @parameters -Verbose *>&1 | ForEach-Object {
        `$record = `$_
        switch (`$record) {
            { `$_ -is [System.Management.Automation.VerboseRecord] } { 'VERBOSE: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.WarningRecord] } { 'WARNING: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.DebugRecord] } { 'DEBUG: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.InformationRecord] } { 'INFO: ' + `$record; break }
            { `$_ -is [System.Management.Automation.ErrorRecord] } {
                `$script:failed = `$true
                'ERRORID ' + `$record.FullyQualifiedErrorId
                'ERROR: ' + `$record.Exception.Message
                break
            }
            default { 'SUMMARY ' + (`$record | Select-Object -Property * | ConvertTo-Json -Compress -Depth 3) }
        }
    }
}
catch {
    'ERRORID ' + `$_.FullyQualifiedErrorId
    'ERROR: ' + `$_.Exception.Message
    exit 1
}
if (`$failed) { exit 1 }
exit 0
"@
    $process = Start-PwshProcess -Script $script -LogPath $LogPath -Name 'replicator'
    if (-not $NoWait) {
        try {
            $null = Wait-LogLine -Path $LogPath -Pattern '^VERBOSE: replicating ' -TimeoutSeconds $TimeoutSeconds -Process $process
        }
        catch {
            $null = $process | Stop-TestProcess -Signal KILL -TimeoutSeconds 5
            throw
        }
    }
    $process
}

function Stop-TestReplicator {
    <#
    .SYNOPSIS
        Sends SIGTERM to a replicator's process group, waits for the whole group to end, and returns the exit code; throws if it takes longer than -TimeoutSeconds.
    #>
    [CmdletBinding()]
    [OutputType([int])]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipeline)][object]$Replicator,
        [double]$TimeoutSeconds = 30
    )
    process {
        $Replicator | Send-ProcessGroupSignal -Signal TERM
        $null = Wait-ProcessGroupExit -Pgid $Replicator.Pgid -TimeoutSeconds $TimeoutSeconds
        if (-not $Replicator.Process.WaitForExit(10000)) {
            throw "The replicator (pid $($Replicator.Pid)) left its process group but did not exit."
        }
        $Replicator.Process.WaitForExit()
        $Replicator.Process.ExitCode
    }
}

function Get-ReplicatorSummary {
    <#
    .SYNOPSIS
        Returns the ReplicationSummary objects (as parsed JSON) that a Start-TestReplicator child wrote when it ended.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)][string]$LogPath)
    foreach ($line in (Get-Content -LiteralPath $LogPath)) {
        if ($line.StartsWith('SUMMARY ')) { $line.Substring(8) | ConvertFrom-Json }
    }
}

function Get-ReplicatorErrorId {
    <#
    .SYNOPSIS
        Returns the FullyQualifiedErrorIds a Start-TestReplicator child reported.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([Parameter(Mandatory, Position = 0)][string]$LogPath)
    foreach ($line in (Get-Content -LiteralPath $LogPath)) {
        if ($line.StartsWith('ERRORID ')) { $line.Substring(8).Trim() }
    }
}

function ConvertTo-ReplicaPosition {
    <#
    .SYNOPSIS
        Parses a position 'generation/index(8 hex):offset' into Generation, Index and Offset.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0, ValueFromPipeline)][string]$Text)
    process {
        $m = [regex]::Match($Text, "^$script:PositionPattern$")
        if (-not $m.Success) { throw "'$Text' is not a replica position (generation/index:offset)." }
        [pscustomobject]@{
            PSTypeName = 'SqliteReplica.Tests.Position'
            Generation = $m.Groups['gen'].Value
            Index      = [Convert]::ToInt64($m.Groups['idx'].Value, 16)
            Offset     = [long]$m.Groups['off'].Value
            Text       = $Text
        }
    }
}

function Compare-ReplicaPosition {
    <#
    .SYNOPSIS
        Compares two positions of one generation by index, then offset: -1, 0 or 1.
    #>
    [CmdletBinding()]
    [OutputType([int])]
    param(
        [Parameter(Mandatory, Position = 0)][object]$Left,
        [Parameter(Mandatory, Position = 1)][object]$Right
    )
    if ($Left.Generation -ne $Right.Generation) {
        throw "Positions of different generations cannot be compared: $($Left.Generation) and $($Right.Generation)."
    }
    if ($Left.Index -ne $Right.Index) { return [Math]::Sign($Left.Index - $Right.Index) }
    [Math]::Sign($Left.Offset - $Right.Offset)
}

function Get-ConfirmedPosition {
    <#
    .SYNOPSIS
        Returns, in log order, every position a replicator log reports as confirmed (the 'confirmed=' field of 'wal segment written' lines).
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)][string]$LogPath)
    $text = if (Test-Path -LiteralPath $LogPath) { [System.IO.File]::ReadAllText($LogPath) } else { '' }
    foreach ($m in [regex]::Matches($text, "wal segment written .*confirmed=$script:PositionPattern")) {
        [pscustomobject]@{
            PSTypeName = 'SqliteReplica.Tests.Position'
            Generation = $m.Groups['gen'].Value
            Index      = [Convert]::ToInt64($m.Groups['idx'].Value, 16)
            Offset     = [long]$m.Groups['off'].Value
            Text       = '{0}/{1}:{2}' -f $m.Groups['gen'].Value, $m.Groups['idx'].Value, $m.Groups['off'].Value
        }
    }
}

function New-RestoreTarget {
    <#
    .SYNOPSIS
        Returns the path of a database file that does not exist yet, in a new empty directory under -Parent.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)][string]$Parent,
        [string]$Name = 'restored.db'
    )
    $dir = New-TestDirectory -Prefix 'restore' -Parent $Parent
    Join-Path $dir $Name
}

function Copy-ReplicaDirectory {
    <#
    .SYNOPSIS
        Copies a replica directory tree and keeps every file's modification time (Litestream's CreatedAt).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Source,
        [Parameter(Mandatory, Position = 1)][string]$Destination
    )
    $null = [System.IO.Directory]::CreateDirectory($Destination)
    $sourceRoot = [System.IO.Path]::GetFullPath($Source)
    foreach ($file in [System.IO.Directory]::GetFiles($sourceRoot, '*', [System.IO.SearchOption]::AllDirectories)) {
        $relative = [System.IO.Path]::GetRelativePath($sourceRoot, $file)
        $target = Join-Path $Destination $relative
        $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($target))
        [System.IO.File]::Copy($file, $target, $true)
        [System.IO.File]::SetLastWriteTimeUtc($target, [System.IO.File]::GetLastWriteTimeUtc($file))
    }
    $Destination
}

function Get-DirectoryEntry {
    <#
    .SYNOPSIS
        Lists every file and directory under a path (hidden ones too), as paths relative to it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([Parameter(Mandatory, Position = 0)][string]$Path)
    if (-not (Test-Path -LiteralPath $Path)) { return }
    Get-ChildItem -LiteralPath $Path -Recurse -Force | ForEach-Object { [System.IO.Path]::GetRelativePath($Path, $_.FullName) }
}

function Format-RfcTimestamp {
    <#
    .SYNOPSIS
        Formats a time as RFC 3339 in UTC with fractional seconds (what litestream restore -timestamp takes).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([Parameter(Mandatory, Position = 0)][DateTimeOffset]$Time)
    $Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", [cultureinfo]::InvariantCulture)
}

function Get-GapMidpoint {
    <#
    .SYNOPSIS
        Given replica files (with LastWriteTimeUtc, from Get-ReplicaFile), returns the middle of the widest gap between consecutive file times, as a DateTimeOffset in UTC.
    .DESCRIPTION
        A -Timestamp in the middle of a quiet spell selects the same files in every
        implementation, whatever their timestamp resolution.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][object[]]$Files,
        [datetime]$After = [datetime]::MinValue,
        [datetime]$Before = [datetime]::MaxValue
    )
    $times = @($Files | ForEach-Object LastWriteTimeUtc | Where-Object { $_ -gt $After -and $_ -lt $Before } | Sort-Object)
    if ($times.Count -lt 2) { throw 'Need at least two file times to find a gap.' }
    $best = $null
    for ($i = 1; $i -lt $times.Count; $i++) {
        $gap = $times[$i] - $times[$i - 1]
        if ($null -eq $best -or $gap -gt $best.Gap) { $best = [pscustomobject]@{ Gap = $gap; Start = $times[$i - 1] } }
    }
    [pscustomobject]@{
        Time = [DateTimeOffset]::new([datetime]::SpecifyKind($best.Start + [timespan]::FromTicks($best.Gap.Ticks / 2), 'Utc'))
        Gap  = $best.Gap
    }
}

function Wait-ReplicaQuiet {
    <#
    .SYNOPSIS
        Waits until no file under a replica directory has appeared or changed for -QuietSeconds (a settling wait, not a timing check); throws after -TimeoutSeconds.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][string]$ReplicaDir,
        [double]$QuietSeconds = 1.5,
        [double]$TimeoutSeconds = 60
    )
    $state = @{ Last = $null; Since = [System.Diagnostics.Stopwatch]::StartNew() }
    $null = Wait-Until -TimeoutSeconds $TimeoutSeconds -Message "the replica '$ReplicaDir' to stay unchanged for $QuietSeconds s" -Condition {
        $files = if (Test-Path -LiteralPath $ReplicaDir) { @(Get-ChildItem -LiteralPath $ReplicaDir -Recurse -File -Force) } else { @() }
        $fingerprint = ($files | Sort-Object FullName | ForEach-Object { '{0}|{1}|{2}' -f $_.FullName, $_.Length, $_.LastWriteTimeUtc.Ticks }) -join ';'
        if ($fingerprint -ne $state.Last) {
            $state.Last = $fingerprint
            $state.Since.Restart()
            return $false
        }
        $state.Since.Elapsed.TotalSeconds -ge $QuietSeconds
    }
}

Export-ModuleMember -Function @(
    'Start-TestReplicator'
    'Stop-TestReplicator'
    'Get-ReplicatorSummary'
    'Get-ReplicatorErrorId'
    'ConvertTo-ReplicaPosition'
    'Compare-ReplicaPosition'
    'Get-ConfirmedPosition'
    'New-RestoreTarget'
    'Copy-ReplicaDirectory'
    'Get-DirectoryEntry'
    'Format-RfcTimestamp'
    'Get-GapMidpoint'
    'Wait-ReplicaQuiet'
)
