#Requires -Version 7.6
#Requires -Modules SqliteReplica

<#
.SYNOPSIS
    Provisions a fresh box from its litestream.yml: restores every missing database from its
    replica, verifies each restore with a restore drill, then starts replication.

.DESCRIPTION
    For every database listed in -ConfigPath, in the order of the file:

      1. A database file that is missing is restored from its (first) replica with
         Restore-SqliteReplica -IfDbNotExists -IfReplicaExists. An existing file is never
         touched, and a replica that holds no backup yet (a new application) is not an error:
         the database is reported as NoBackup and the application creates it.
      2. Every database restored by this run is checked with Test-ReplicaRestore: a second,
         independent restore of the replica, PRAGMA integrity_check, and a table-by-table
         comparison with the restored file. Anything but Passed stops the script before
         replication starts, because replicating a bad copy would make it the newest backup.
      3. Replication starts. With -AsJob, Start-SqliteReplication -ConfigPath -AsJob runs it as
         a job of this session (the job is the last output; it ends with the session, so use
         it for interactive work and tests). Without -AsJob the script prints how to start the
         systemd service described in the README, which is how a box should run it.

    Credentials: the config's ${VAR} references (LITESTREAM_ACCESS_KEY_ID,
    LITESTREAM_SECRET_ACCESS_KEY...) are read from the environment; -EnvironmentFile loads a
    systemd-style KEY=VALUE file (such as /etc/sqlitereplica.env) into this process first.

    Output: one object per configured database with DatabasePath, Action (Restored, Existing,
    NoBackup or WhatIf), Restore (the SqliteRestoreResult) and Drill (the ReplicaDrillResult),
    then, with -AsJob, the replication job.

.PARAMETER ConfigPath
    The litestream.yml that lists the databases and their replicas.

.PARAMETER EnvironmentFile
    A KEY=VALUE file (blank lines and # comments allowed, values may be quoted) whose variables
    are set in this process before anything else runs.

.PARAMETER AsJob
    Start replication as a job of this session and output it, instead of printing the
    service commands.

.PARAMETER JobName
    With -AsJob: the job's name (default SqliteReplica).

.PARAMETER ServiceName
    The systemd unit printed without -AsJob (default sqlitereplica).

.PARAMETER SkipDrill
    Do not run Test-ReplicaRestore on the restored databases (faster; the restore itself still
    verifies every object of the chain and runs SQLite's quick_check).

.EXAMPLE
    ./Initialize-Box.ps1 -ConfigPath /etc/litestream.yml -EnvironmentFile /etc/sqlitereplica.env

    Restores what is missing, verifies it, and prints the command that starts the service.

.EXAMPLE
    ./Initialize-Box.ps1 -ConfigPath ./litestream.yml -AsJob | Format-Table DatabasePath, Action, @{ n = 'Drill'; e = { $_.Drill.Status } }

    Restores and verifies, then replicates in the background of this session (Stop-Job makes
    the final sync).

.EXAMPLE
    ./Initialize-Box.ps1 -ConfigPath /etc/litestream.yml -WhatIf

    Shows which databases would be restored, from which objects, and starts nothing.

.NOTES
    Exit behaviour: a failed restore or drill is a terminating error (pwsh -File exits 1) and
    replication is not started.
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory, Position = 0)]
    [ValidateNotNullOrEmpty()]
    [string] $ConfigPath,

    [string] $EnvironmentFile,

    [switch] $AsJob,

    [ValidateNotNullOrEmpty()]
    [string] $JobName = 'SqliteReplica',

    [ValidateNotNullOrEmpty()]
    [string] $ServiceName = 'sqlitereplica',

    [switch] $SkipDrill
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$ConfigPath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($ConfigPath)
if (-not (Test-Path -LiteralPath $ConfigPath -PathType Leaf)) {
    throw "The config file '$ConfigPath' does not exist."
}

if ($EnvironmentFile) {
    foreach ($line in Get-Content -LiteralPath $EnvironmentFile) {
        $trimmed = $line.Trim()
        if (-not $trimmed -or $trimmed.StartsWith('#')) { continue }
        $name, $value = $trimmed -split '=', 2
        if ($null -eq $value -or $name -notmatch '^[A-Za-z_][A-Za-z0-9_]*$') {
            throw "'$EnvironmentFile' has a line that is not KEY=VALUE: '$line'."
        }
        $value = $value.Trim()
        if ($value.Length -ge 2 -and $value[0] -eq $value[-1] -and $value[0] -in '"', "'") {
            $value = $value.Substring(1, $value.Length - 2)
        }
        [Environment]::SetEnvironmentVariable($name.Trim(), $value)
    }
}

# The databases of the config, as the module reads it (paths expanded and made absolute):
# the status cmdlet lists every configured database, replicated or not.
$databases = @(@(Get-SqliteReplicationStatus -ConfigPath $ConfigPath).DatabasePath | Select-Object -Unique)
if ($databases.Count -eq 0) {
    throw "'$ConfigPath' lists no databases."
}

foreach ($database in $databases) {
    $record = [ordered]@{
        PSTypeName   = 'SqliteReplica.Examples.BoxDatabase'
        DatabasePath = $database
        Action       = 'Existing'
        Restore      = $null
        Drill        = $null
    }
    if (-not (Test-Path -LiteralPath $database)) {
        $restore = Restore-SqliteReplica -ConfigPath $ConfigPath -DatabasePath $database -IfDbNotExists -IfReplicaExists
        if ($WhatIfPreference) {
            $record.Action = 'WhatIf'
        }
        elseif ($restore) {
            $record.Action = 'Restored'
            $record.Restore = $restore
        }
        else {
            $record.Action = 'NoBackup'
            Write-Warning "'$database' has no backup in its replica; nothing was restored (the application will create it)."
        }
    }

    if ($record.Action -eq 'Restored' -and -not $SkipDrill) {
        $drillErrors = $null
        $drill = Test-ReplicaRestore -ConfigPath $ConfigPath -DatabasePath $database -ErrorAction SilentlyContinue -ErrorVariable drillErrors
        $record.Drill = $drill
        if ($null -eq $drill -or $drill.Status -ne 'Passed') {
            [pscustomobject] $record
            $why = if ($drill) { "$($drill.Status): $($drill.Reason)" } else { ($drillErrors | ForEach-Object { $_.Exception.Message }) -join '; ' }
            throw "The restore drill of '$database' did not pass ($why). Replication was not started; investigate before the restored file becomes the new backup."
        }
    }
    [pscustomobject] $record
}

if ($AsJob) {
    if ($PSCmdlet.ShouldProcess($ConfigPath, 'Start replication as a job')) {
        Start-SqliteReplication -ConfigPath $ConfigPath -AsJob -JobName $JobName
    }
}
elseif (-not $WhatIfPreference) {
    Write-Host "The databases are in place. Start replication with the service (see the README):"
    Write-Host "    systemctl enable --now $ServiceName"
    Write-Host "or in the foreground:"
    Write-Host "    pwsh -NoProfile -NonInteractive -Command `"Import-Module SqliteReplica; Start-SqliteReplication -ConfigPath '$ConfigPath'`""
}
