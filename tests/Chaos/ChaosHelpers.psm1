#Requires -Version 7.6
<#
.SYNOPSIS
    Shared pieces of the reliability campaign (tests/Chaos/Invoke-Chaos.ps1): the replicator in a
    separate pwsh with timestamped log lines, restores judged against what the writer committed,
    figures and findings, and text scrubbing for the report.

.DESCRIPTION
    Builds on tests/Pester/TestHelpers.psm1, IntegrationHelpers.psm1 and S3Fixture.psm1 (imported
    here without -Force, so the processes started through them are tracked in one list).

    The replicator log written by Start-ChaosReplicator holds one line per record:
      <unix ms> VERBOSE: ...    <unix ms> WARNING: ...    <unix ms> DEBUG: ...
      <unix ms> ERRORID <id>    <unix ms> ERROR: <message>
      <unix ms> SUMMARY {json}
    and, untimed, whatever the process writes to stderr itself (the CRASHPOINT evidence line).
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$testsRoot = Join-Path $PSScriptRoot '../Pester'
Import-Module -Name (Join-Path $testsRoot 'TestHelpers.psm1')
Import-Module -Name (Join-Path $testsRoot 'IntegrationHelpers.psm1')
Import-Module -Name (Join-Path $testsRoot 'S3Fixture.psm1')

$script:PositionPattern = '(?<gen>[0-9a-f]{16})/(?<idx>[0-9a-f]{8}):(?<off>\d+)'
$script:ScrubRules = [System.Collections.Generic.List[object]]::new()

#region Figures, findings, scrubbing

function New-ChaosFigure {
    <#
    .SYNOPSIS
        One line of a campaign's table: what was measured, its value, the goal and whether it was met ($null: reported only).
    #>
    param(
        [Parameter(Mandatory)][string]$Name,
        [AllowNull()][object]$Value,
        [string]$Goal = 'report',
        [AllowNull()][object]$Met = $null,
        [string]$Note = ''
    )
    [pscustomobject][ordered]@{ Name = $Name; Value = $Value; Goal = $Goal; Met = $Met; Note = $Note }
}

function New-ChaosFinding {
    <#
    .SYNOPSIS
        A product defect (or a goal missed) with the evidence that shows it.
    #>
    param(
        [Parameter(Mandatory)][string]$Campaign,
        [Parameter(Mandatory)][string]$Title,
        [Parameter(Mandatory)][string]$Evidence
    )
    [pscustomobject][ordered]@{ Campaign = $Campaign; Title = $Title; Evidence = (ConvertTo-ScrubbedText $Evidence) }
}

function Add-ScrubRule {
    <#
    .SYNOPSIS
        Replaces a machine-specific string (a scratch folder, the repository root) with a placeholder in everything written out.
    #>
    param([Parameter(Mandatory)][string]$Text, [Parameter(Mandatory)][string]$Placeholder)
    if ($Text.Length -lt 4) { return }
    $script:ScrubRules.Add([pscustomobject]@{ Text = $Text.TrimEnd('/'); Placeholder = $Placeholder })
    # Longest first, so a folder inside another is replaced by its own placeholder.
    $sorted = @($script:ScrubRules | Sort-Object { $_.Text.Length } -Descending)
    $script:ScrubRules.Clear()
    foreach ($rule in $sorted) { $script:ScrubRules.Add($rule) }
}

function ConvertTo-ScrubbedText {
    param([AllowNull()][AllowEmptyString()][string]$Text)
    if ([string]::IsNullOrEmpty($Text)) { return $Text }
    foreach ($rule in $script:ScrubRules) { $Text = $Text.Replace($rule.Text, $rule.Placeholder) }
    # Any other temp path (a scratch file the product made under the system temp folder).
    $Text = [regex]::Replace($Text, '(?<![\w>])/tmp/[^\s''"]+', '<tmp>')
    # The host name (lease holders, status files).
    $machine = [Environment]::MachineName
    if ($machine) { $Text = [regex]::Replace($Text, "(?<=\bon |""host"":\s*""|Host\s*[=:]\s*)$([regex]::Escape($machine))\b", '<host>') }
    $Text
}

function Limit-Text {
    param([AllowNull()][AllowEmptyString()][string]$Text, [int]$Length = 300)
    if ([string]::IsNullOrEmpty($Text)) { return $Text }
    $one = ($Text -replace '\s+', ' ').Trim()
    if ($one.Length -le $Length) { return $one }
    $one.Substring(0, $Length) + '...'
}

#endregion

#region Processes

function Read-ChaosText {
    # A file another process may be writing (shared read); '' when it does not exist.
    param([Parameter(Mandatory)][string]$Path)
    try {
        $stream = [System.IO.FileStream]::new($Path, 'Open', 'Read', 'ReadWrite, Delete')
    }
    catch [System.IO.FileNotFoundException], [System.IO.DirectoryNotFoundException] {
        return ''
    }
    try { [System.IO.StreamReader]::new($stream).ReadToEnd() } finally { $stream.Dispose() }
}

function Start-ChaosReplicator {
    <#
    .SYNOPSIS
        Runs Start-SqliteReplication @Parameters -Verbose in a separate pwsh (own process group) with timestamped log lines.
    .DESCRIPTION
        -Environment adds variables to the child (SQLITEREPLICA_CRASH_AT, credentials, SSL_CERT_FILE).
        -Umask runs the child under that umask (000 makes any file created without an explicit
        mode world-readable). -DebugOutput records debug messages too. Unless -NoWait, waits for the
        'replicating ...' line (fails at once if the child exits first).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][hashtable]$Parameters,
        [Parameter(Mandatory)][string]$LogPath,
        [hashtable]$Environment,
        [string]$Umask,
        [switch]$DebugOutput,
        [switch]$NoWait,
        [double]$TimeoutSeconds = 60,
        [string]$Command = 'Start-SqliteReplication'
    )
    $modulePath = $env:SQLITEREPLICA_MODULE
    $all = @{ Verbose = $true }
    foreach ($key in $Parameters.Keys) { $all[$key] = $Parameters[$key] }
    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($LogPath))
    $parametersPath = "$LogPath.parameters.xml"
    $all | Export-Clixml -LiteralPath $parametersPath -Depth 5
    $quote = { param($s) "'" + $s.Replace("'", "''") + "'" }
    $script = @"
`$PSStyle.OutputRendering = 'PlainText'
`$ProgressPreference = 'SilentlyContinue'
Import-Module -Name $(& $quote $modulePath) -ErrorAction Stop
`$parameters = Import-Clixml -LiteralPath $(& $quote $parametersPath)
`$DebugPreference = '$(if ($DebugOutput) { 'Continue' } else { 'SilentlyContinue' })'
`$failed = `$false
function Stamp { [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds().ToString() + ' ' }
try {
    $Command @parameters *>&1 | ForEach-Object {
        `$record = `$_
        switch (`$record) {
            { `$_ -is [System.Management.Automation.VerboseRecord] } { (Stamp) + 'VERBOSE: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.WarningRecord] } { (Stamp) + 'WARNING: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.DebugRecord] } { (Stamp) + 'DEBUG: ' + `$record.Message; break }
            { `$_ -is [System.Management.Automation.InformationRecord] } { (Stamp) + 'INFO: ' + `$record; break }
            { `$_ -is [System.Management.Automation.ErrorRecord] } {
                `$script:failed = `$true
                (Stamp) + 'ERRORID ' + `$record.FullyQualifiedErrorId
                (Stamp) + 'ERROR: ' + `$record.Exception.Message
                break
            }
            default { (Stamp) + 'SUMMARY ' + (`$record | Select-Object -Property * | ConvertTo-Json -Compress -Depth 3) }
        }
    }
}
catch {
    (Stamp) + 'ERRORID ' + `$_.FullyQualifiedErrorId
    (Stamp) + 'ERROR: ' + `$_.Exception.Message
    exit 1
}
if (`$failed) { exit 1 }
exit 0
"@
    $scriptPath = [System.IO.Path]::ChangeExtension($LogPath, $null).TrimEnd('.') + '-' + [guid]::NewGuid().ToString('N').Substring(0, 8) + '.ps1'
    [System.IO.File]::WriteAllText($scriptPath, $script)
    $pwsh = Get-PwshCommand
    $arguments = @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $scriptPath)
    if ($Umask) {
        $process = Start-TestProcess -FilePath '/bin/sh' -ArgumentList (@('-c', "umask $Umask; exec `"`$0`" `"`$@`"", $pwsh.FilePath) + $arguments) -LogPath $LogPath -Environment $Environment -Name 'replicator'
    }
    else {
        $process = Start-TestProcess -FilePath $pwsh.FilePath -ArgumentList $arguments -LogPath $LogPath -Environment $Environment -Name 'replicator'
    }
    if (-not $NoWait) {
        try {
            $null = Wait-LogLine -Path $LogPath -Pattern '^\d+ VERBOSE: replicating ' -TimeoutSeconds $TimeoutSeconds -Process $process
        }
        catch {
            $null = $process | Stop-TestProcess -Signal KILL -TimeoutSeconds 5
            throw
        }
    }
    $process
}

function Stop-ChaosReplicator {
    <#
    .SYNOPSIS
        SIGTERM to the replicator's group (final sync), waits; returns the exit code, or -1 when it had to be killed.
    #>
    param([Parameter(Mandatory, ValueFromPipeline)][object]$Replicator, [double]$TimeoutSeconds = 40)
    process {
        if ($Replicator.HasExited) { return $Replicator.Process.ExitCode }
        $Replicator | Send-ProcessGroupSignal -Signal TERM -IgnoreMissing
        try {
            $null = Wait-ProcessGroupExit -Pgid $Replicator.Pgid -TimeoutSeconds $TimeoutSeconds
        }
        catch [System.TimeoutException] {
            $Replicator | Send-ProcessGroupSignal -Signal KILL -IgnoreMissing
            $null = Wait-ProcessGroupExit -Pgid $Replicator.Pgid -TimeoutSeconds 10
            $null = $Replicator.Process.WaitForExit(10000)
            return -1
        }
        $null = $Replicator.Process.WaitForExit(10000)
        $Replicator.Process.WaitForExit()
        $Replicator.Process.ExitCode
    }
}

function Stop-ChaosProcessKill {
    <#
    .SYNOPSIS
        SIGKILL to a whole process group, then waits for every member to be gone; returns the leader's exit code.
    #>
    param([Parameter(Mandatory, ValueFromPipeline)][object]$Process)
    process {
        $Process | Send-ProcessGroupSignal -Signal KILL -IgnoreMissing
        $null = Wait-ProcessGroupExit -Pgid $Process.Pgid -TimeoutSeconds 30
        $null = $Process.Process.WaitForExit(10000)
        $Process.Process.WaitForExit()
        $Process.Process.ExitCode
    }
}

function Get-ChaosLogLine {
    <#
    .SYNOPSIS
        Parses a Start-ChaosReplicator log into records: At (unix ms or $null), Kind, Text.
    #>
    param([Parameter(Mandatory)][string]$LogPath, [int]$Offset = 0)
    $text = if (Test-Path -LiteralPath $LogPath) { [System.IO.File]::ReadAllText($LogPath) } else { '' }
    if ($Offset -gt 0 -and $Offset -le $text.Length) { $text = $text.Substring($Offset) }
    foreach ($line in ($text -split "`r?`n")) {
        if ($line -eq '') { continue }
        $m = [regex]::Match($line, '^(?<at>\d{13}) (?<kind>VERBOSE:|WARNING:|DEBUG:|INFO:|ERRORID|ERROR:|SUMMARY) ?(?<text>.*)$')
        if ($m.Success) {
            [pscustomobject]@{ At = [long]$m.Groups['at'].Value; Kind = $m.Groups['kind'].Value.TrimEnd(':'); Text = $m.Groups['text'].Value }
        }
        else {
            [pscustomobject]@{ At = $null; Kind = 'RAW'; Text = $line }
        }
    }
}

function Get-ChaosConfirmed {
    <#
    .SYNOPSIS
        Every 'confirmed=<gen>/<idx>:<off>' a replicator logged (after an acknowledged upload), in log order, with its time.
    #>
    param([Parameter(Mandatory)][string]$LogPath)
    foreach ($record in (Get-ChaosLogLine -LogPath $LogPath)) {
        if ($record.Kind -ne 'VERBOSE') { continue }
        $m = [regex]::Match($record.Text, "wal segment written .*confirmed=$script:PositionPattern")
        if ($m.Success) {
            [pscustomobject]@{
                Generation = $m.Groups['gen'].Value
                Index      = [Convert]::ToInt64($m.Groups['idx'].Value, 16)
                Offset     = [long]$m.Groups['off'].Value
                Text       = '{0}/{1}:{2}' -f $m.Groups['gen'].Value, $m.Groups['idx'].Value, $m.Groups['off'].Value
                At         = $record.At
            }
        }
    }
}

function ConvertTo-ChaosPosition {
    param([Parameter(Mandatory)][AllowEmptyString()][AllowNull()][string]$Text)
    if ([string]::IsNullOrWhiteSpace($Text)) { return $null }
    $m = [regex]::Match($Text, "^$script:PositionPattern$")
    if (-not $m.Success) { return $null }
    [pscustomobject]@{
        Generation = $m.Groups['gen'].Value
        Index      = [Convert]::ToInt64($m.Groups['idx'].Value, 16)
        Offset     = [long]$m.Groups['off'].Value
        Text       = $Text
    }
}

function Compare-ChaosPosition {
    # -1, 0, 1 within one generation; $null across generations.
    param($Left, $Right)
    if ($Left.Generation -ne $Right.Generation) { return $null }
    if ($Left.Index -ne $Right.Index) { return [Math]::Sign($Left.Index - $Right.Index) }
    [Math]::Sign($Left.Offset - $Right.Offset)
}

#endregion

#region The writer's committed transactions

function New-CommitLedger {
    <#
    .SYNOPSIS
        What the application committed: every transaction boundary (the last id of each COMMIT) the writers reported.
    .DESCRIPTION
        InitialRows: ids 1..InitialRows were committed one per transaction. Add the stdout files of
        every writer run on the database with Update-CommitLedger; the ledger remembers how far each
        file was read.
    #>
    param([long]$InitialRows = 0)
    $ledger = [pscustomobject]@{
        Boundaries  = [System.Collections.Generic.HashSet[long]]::new()
        LastId      = $InitialRows
        InitialRows = $InitialRows
        Offsets     = @{}
    }
    for ($i = 1; $i -le $InitialRows; $i++) { $null = $ledger.Boundaries.Add($i) }
    $null = $ledger.Boundaries.Add(0)
    $ledger
}

function Update-CommitLedger {
    param([Parameter(Mandatory)]$Ledger, [Parameter(Mandatory)][string]$StdoutPath)
    $text = if (Test-Path -LiteralPath $StdoutPath) { [System.IO.File]::ReadAllText($StdoutPath) } else { '' }
    $from = if ($Ledger.Offsets.ContainsKey($StdoutPath)) { $Ledger.Offsets[$StdoutPath] } else { 0 }
    # Only whole lines: a line being written is read next time.
    $end = $text.LastIndexOf("`n") + 1
    if ($end -le $from) { return $Ledger.LastId }
    foreach ($m in [regex]::Matches($text.Substring($from, $end - $from), '(?m)^committed (\d+)\s*$')) {
        $id = [long]$m.Groups[1].Value
        $null = $Ledger.Boundaries.Add($id)
        if ($id -gt $Ledger.LastId) { $Ledger.LastId = $id }
    }
    $Ledger.Offsets[$StdoutPath] = $end
    $Ledger.LastId
}

function Test-CommittedPrefix {
    <#
    .SYNOPSIS
        Judges a restored database against the ledger: intact, ids exactly 1..k, k the end of a committed transaction.
    .DESCRIPTION
        -UnreportedRows: a transaction of that many rows may have committed without its
        'committed' line yet (the writer prints right after COMMIT, or was killed in between);
        k = LastId + UnreportedRows is then accepted too. -MaxCommittedId: an upper bound known
        from the live database itself (after a writer crash, its committed state).
    #>
    param(
        [Parameter(Mandatory)]$Dump,
        [Parameter(Mandatory)]$Ledger,
        [long]$UnreportedRows = 0,
        [Nullable[long]]$MaxCommittedId = $null
    )
    $problems = [System.Collections.Generic.List[string]]::new()
    if ($Dump.integrity -ne 'ok') { $problems.Add("integrity_check: $($Dump.integrity)") }
    $maxId = if ($null -eq $Dump.maxId) { 0L } else { [long]$Dump.maxId }
    $count = 0L
    if ($Dump.tables -and $Dump.tables.PSObject.Properties['t']) { $count = [long]$Dump.tables.t } else { $problems.Add('table t is missing') }
    if ($count -ne $maxId) { $problems.Add("ids are not the prefix 1..k: $count rows, max id $maxId") }
    $isBoundary = $Ledger.Boundaries.Contains($maxId)
    $isUnreported = $UnreportedRows -gt 0 -and $maxId -gt $Ledger.LastId -and ($maxId - $Ledger.LastId) % $UnreportedRows -eq 0 -and ($maxId - $Ledger.LastId) -le $UnreportedRows
    if (-not $isBoundary -and -not $isUnreported) {
        $problems.Add("max id $maxId is not the end of a committed transaction (last reported commit $($Ledger.LastId))")
    }
    if ($null -ne $MaxCommittedId -and $maxId -gt $MaxCommittedId) {
        $problems.Add("max id $maxId is past the live database's committed max id $MaxCommittedId")
    }
    [pscustomobject]@{ Consistent = $problems.Count -eq 0; MaxId = $maxId; Problems = @($problems) }
}

#endregion

#region Restores

function Invoke-ChaosRestore {
    <#
    .SYNOPSIS
        Restore-SqliteReplica (in this process) into a fresh file; returns Ok, Result, ErrorId, Message, Path and Dump (writer's dump).
    .DESCRIPTION
        -Replica: @{ Kind = 'file'; Path = ... } or @{ Kind = 's3'; Url = ...; Endpoint = ... }.
    #>
    param(
        [Parameter(Mandatory)]$Replica,
        [Parameter(Mandatory)][string]$Parent,
        [hashtable]$Extra = @{},
        [switch]$NoDump
    )
    $target = New-RestoreTarget -Parent $Parent
    $arguments = @{ OutputPath = $target; ErrorAction = 'Stop' }
    if ($Replica.Kind -eq 'file') { $arguments.ReplicaPath = $Replica.Path }
    else {
        $arguments.ReplicaUrl = $Replica.Url
        $arguments.Endpoint = $Replica.Endpoint
        if ($Replica.Endpoint -like 'https:*') { $arguments.SkipVerify = $true }
    }
    foreach ($key in $Extra.Keys) { $arguments[$key] = $Extra[$key] }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        $result = Restore-SqliteReplica @arguments
        $dump = if ($NoDump) { $null } else { Get-DbDump -Path $target }
        [pscustomobject]@{ Ok = $true; Result = $result; ErrorId = $null; Message = $null; Path = $target; Dump = $dump; Seconds = $watch.Elapsed.TotalSeconds }
    }
    catch {
        [pscustomobject]@{ Ok = $false; Result = $null; ErrorId = $_.FullyQualifiedErrorId; Message = $_.Exception.Message; Path = $target; Dump = $null; Seconds = $watch.Elapsed.TotalSeconds }
    }
}

function Remove-RestoreTarget {
    param([Parameter(Mandatory)][AllowNull()]$Restore)
    if ($null -eq $Restore -or -not $Restore.Path) { return }
    $dir = [System.IO.Path]::GetDirectoryName($Restore.Path)
    if (Test-Path -LiteralPath $dir) { Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction SilentlyContinue }
}

function Get-RestoredMaxIdAt {
    <#
    .SYNOPSIS
        Restores exactly up to a position (Test-ReplicaRestore -Generation -Index -Offset -KeepRestoredDatabase) and returns the drill's Restore outcome and the max id there.
    #>
    param([Parameter(Mandatory)]$Replica, [Parameter(Mandatory)]$Position)
    $arguments = @{ Generation = $Position.Generation; Index = $Position.Index; Offset = $Position.Offset; KeepRestoredDatabase = $true; ErrorAction = 'Stop' }
    if ($Replica.Kind -eq 'file') { $arguments.ReplicaPath = $Replica.Path }
    else {
        $arguments.ReplicaUrl = $Replica.Url
        $arguments.Endpoint = $Replica.Endpoint
        if ($Replica.Endpoint -like 'https:*') { $arguments.SkipVerify = $true }
    }
    try {
        $drill = Test-ReplicaRestore @arguments
    }
    catch {
        return [pscustomobject]@{ Ok = $false; Detail = "$($_.FullyQualifiedErrorId): $($_.Exception.Message)"; MaxId = $null; RestoredPosition = $null; Integrity = $null }
    }
    $restoreCheck = @($drill.Checks | Where-Object Name -eq 'Restore')[0]
    $integrityCheck = @($drill.Checks | Where-Object Name -eq 'Integrity')[0]
    $maxId = $null
    if ($drill.RestoredPath -and (Test-Path -LiteralPath $drill.RestoredPath)) {
        $maxId = (Get-DbDump -Path $drill.RestoredPath).maxId
        Remove-Item -LiteralPath ([System.IO.Path]::GetDirectoryName($drill.RestoredPath)) -Recurse -Force -ErrorAction SilentlyContinue
    }
    [pscustomobject]@{
        Ok               = ($null -ne $restoreCheck -and $restoreCheck.Outcome -eq 'Passed' -and $drill.RestoredPosition -eq $Position.Text)
        Detail           = if ($restoreCheck) { "$($restoreCheck.Outcome): $($restoreCheck.Detail)" } else { $drill.Reason }
        MaxId            = $maxId
        RestoredPosition = $drill.RestoredPosition
        Integrity        = if ($integrityCheck) { $integrityCheck.Outcome } else { $null }
    }
}

#endregion

#region Files

function Get-TreeFingerprint {
    <#
    .SYNOPSIS
        A fingerprint of every file under a path (relative name, length, SHA-256): equal fingerprints mean nothing was changed.
    #>
    param([Parameter(Mandatory)][string]$Path)
    if (-not (Test-Path -LiteralPath $Path)) { return '<absent>' }
    $item = Get-Item -LiteralPath $Path -Force
    if (-not $item.PSIsContainer) {
        return "$($item.Length):$((Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash)"
    }
    $lines = foreach ($file in (Get-ChildItem -LiteralPath $Path -Recurse -Force -File | Sort-Object FullName)) {
        '{0}|{1}|{2}' -f [System.IO.Path]::GetRelativePath($Path, $file.FullName), $file.Length, (Get-FileHash -LiteralPath $file.FullName -Algorithm SHA256).Hash
    }
    ($lines -join "`n")
}

function Get-UnixModeEntry {
    <#
    .SYNOPSIS
        Every file and directory under the given paths with its Unix mode; WorldReadable marks o+r.
    #>
    param([Parameter(Mandatory)][string[]]$Path, [string]$Label = '')
    foreach ($root in $Path) {
        if (-not (Test-Path -LiteralPath $root)) { continue }
        $items = @(Get-Item -LiteralPath $root -Force) + @(if ((Get-Item -LiteralPath $root -Force).PSIsContainer) { Get-ChildItem -LiteralPath $root -Recurse -Force })
        foreach ($item in $items) {
            $mode = [System.IO.File]::GetUnixFileMode($item.FullName)
            [pscustomobject]@{
                Label         = $Label
                Path          = $item.FullName
                Kind          = if ($item.PSIsContainer) { 'dir' } else { 'file' }
                Mode          = '{0}' -f [Convert]::ToString([int]$mode, 8).PadLeft(4, '0')
                WorldReadable = [bool]($mode -band [System.IO.UnixFileMode]::OtherRead)
                GroupReadable = [bool]($mode -band [System.IO.UnixFileMode]::GroupRead)
            }
        }
    }
}

#endregion

Export-ModuleMember -Function @(
    'New-ChaosFigure'
    'New-ChaosFinding'
    'Add-ScrubRule'
    'ConvertTo-ScrubbedText'
    'Limit-Text'
    'Read-ChaosText'
    'Start-ChaosReplicator'
    'Stop-ChaosReplicator'
    'Stop-ChaosProcessKill'
    'Get-ChaosLogLine'
    'Get-ChaosConfirmed'
    'ConvertTo-ChaosPosition'
    'Compare-ChaosPosition'
    'New-CommitLedger'
    'Update-CommitLedger'
    'Test-CommittedPrefix'
    'Invoke-ChaosRestore'
    'Remove-RestoreTarget'
    'Get-RestoredMaxIdAt'
    'Get-TreeFingerprint'
    'Get-UnixModeEntry'
)
