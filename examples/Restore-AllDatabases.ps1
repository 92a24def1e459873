#Requires -Version 7.6
#Requires -Modules SqliteReplica

<#
.SYNOPSIS
    Restores every database of a litestream.yml, in parallel, into one target folder.

.DESCRIPTION
    For each database listed in -ConfigPath, Restore-SqliteReplica -ConfigPath -DatabasePath
    restores its (first) replica into -Destination, under the database's file name, while the
    live databases are left alone. The restores run in parallel (ForEach-Object -Parallel, at
    most -ThrottleLimit at a time), each in its own runspace with the module imported.

    Use it for a copy of everything (to inspect, to move to another box, to test an upgrade) or,
    with -Timestamp, for a consistent view of every database as of one moment.

    Output: one SqliteRestoreResult per restored database, as each finishes (so in no fixed
    order). A database that cannot be restored is a non-terminating error naming it, and the
    others go on. Two configured databases with the same file name would land on the same target
    file: that is refused before anything is restored.

.PARAMETER ConfigPath
    The litestream.yml that lists the databases and their replicas.

.PARAMETER Destination
    The folder to restore into (created if missing).

.PARAMETER Timestamp
    Restore each database as of this time (Restore-SqliteReplica -Timestamp) instead of its
    newest state. As in Litestream, the time is the replica's: a commit whose WAL segment was
    uploaded after it is not included, even if it was committed before.

.PARAMETER ThrottleLimit
    How many databases are restored at once (default 4).

.PARAMETER Force
    Replace files that already exist in -Destination (without it, an existing file is an error
    for that database).

.EXAMPLE
    ./Restore-AllDatabases.ps1 -ConfigPath /etc/litestream.yml -Destination /srv/restore-check

.EXAMPLE
    ./Restore-AllDatabases.ps1 -ConfigPath /etc/litestream.yml -Destination ./as-of-0500 -Timestamp '2026-11-26T05:00:00Z' |
        Format-Table OutputPath, Position, RestoredTo

    Every database as it was at 05:00 UTC.
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory, Position = 0)]
    [ValidateNotNullOrEmpty()]
    [string] $ConfigPath,

    [Parameter(Mandatory, Position = 1)]
    [ValidateNotNullOrEmpty()]
    [string] $Destination,

    [Nullable[DateTimeOffset]] $Timestamp,

    [ValidateRange(1, 32)]
    [int] $ThrottleLimit = 4,

    [switch] $Force
)

Set-StrictMode -Version 3.0
# Stop on any problem while preparing; the restores themselves follow the caller's preference.
$callerErrorAction = $ErrorActionPreference
$ErrorActionPreference = 'Stop'

$ConfigPath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($ConfigPath)
$Destination = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($Destination)

# Every configured database (the status cmdlet lists them all, replicated or not).
$databases = @(@(Get-SqliteReplicationStatus -ConfigPath $ConfigPath).DatabasePath | Select-Object -Unique)
if ($databases.Count -eq 0) {
    throw "'$ConfigPath' lists no databases."
}
$clashes = @($databases | Group-Object { [IO.Path]::GetFileName($_) } | Where-Object Count -GT 1)
if ($clashes.Count -gt 0) {
    throw "These databases would be restored to the same file in '$Destination': $(($clashes | ForEach-Object { $_.Group -join ' and ' }) -join '; '). Restore them one by one with Restore-SqliteReplica -OutputPath."
}

# -WhatIf and -Confirm are answered here, once per database: the parallel runspaces can neither
# show "What if" messages nor prompt.
$approved = @($databases | Where-Object {
        $PSCmdlet.ShouldProcess((Join-Path $Destination ([IO.Path]::GetFileName($_))), "Restore '$_' from its replica")
    })
if ($approved.Count -eq 0) {
    return
}
if (-not (Test-Path -LiteralPath $Destination)) {
    $null = New-Item -ItemType Directory -Path $Destination -Force
}

$ErrorActionPreference = $callerErrorAction
# The parallel runspaces start empty: they import the same module this session uses.
$modulePath = Join-Path (Get-Module -Name SqliteReplica | Select-Object -First 1).ModuleBase 'SqliteReplica.psd1'
$approved | ForEach-Object -ThrottleLimit $ThrottleLimit -Parallel {
    Import-Module -Name $using:modulePath -ErrorAction Stop
    $parameters = @{
        ConfigPath   = $using:ConfigPath
        DatabasePath = $_
        OutputPath   = Join-Path $using:Destination ([IO.Path]::GetFileName($_))
        Force        = $using:Force
        WhatIf       = $false
        Confirm      = $false
    }
    if ($null -ne $using:Timestamp) { $parameters.Timestamp = $using:Timestamp }
    # Errors stay non-terminating: one database failing does not stop the others.
    Restore-SqliteReplica @parameters -ErrorAction Continue
}
