<#
.SYNOPSIS
    The main job on its embedded default: replicate a live SQLite database to a local-directory
    replica while another process writes to it, stop with a final sync, restore, compare.

.DESCRIPTION
    Run through `dotnet pwsh ./build.ps1 Demo`. Everything happens in a scratch directory under
    the system temp folder, which is removed at the end (pass -Keep to look at it).
#>
[CmdletBinding()]
param(
    [switch] $Keep,
    [int] $Rows = 400
)

$ErrorActionPreference = 'Stop'
$module = if ($env:SQLITEREPLICA_MODULE) { $env:SQLITEREPLICA_MODULE } else { Join-Path $PSScriptRoot '../out/SqliteReplica/SqliteReplica.psd1' }
Import-Module $module
$writer = Join-Path $PSScriptRoot '../out/tools/SqliteWriter/SqliteWriter'

$work = Join-Path ([IO.Path]::GetTempPath()) ("sqlitereplica-demo-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
$db = Join-Path $work 'app.db'
$replica = Join-Path $work 'replica'
$restored = Join-Path $work 'restored.db'
New-Item -ItemType Directory -Path $work | Out-Null

try {
    Write-Host "== 1. A sample application database: $db"
    & $writer init --db $db | Out-Null
    if ($LASTEXITCODE) { throw "writer init failed" }

    Write-Host "== 2. Start-SqliteReplication to $replica (as a background job)"
    $job = Start-SqliteReplication -DatabasePath $db -ReplicaPath $replica -SyncInterval 250ms -AsJob -JobName demo-replication

    Write-Host "== 3. Another process writes $Rows rows while replication runs"
    & $writer write --db $db --count $Rows --interval-ms 5 --blob-bytes 200 | Select-Object -Last 1
    if ($LASTEXITCODE) { throw "writer failed" }

    Write-Host "== 4. Stop replication (Stop-Job: final sync of the last commits)"
    Stop-Job $job
    $job | Receive-Job -Verbose 4>&1 | ForEach-Object { "   $_" } | Select-Object -Last 8
    $job | Format-Table Id, Name, PSJobTypeName, State -AutoSize | Out-Host
    $job | Remove-Job

    Write-Host "== 5. What is in the replica"
    Get-ReplicaGeneration -ReplicaPath $replica | Format-Table -AutoSize | Out-Host
    Get-ReplicaSnapshot -ReplicaPath $replica | Format-Table -AutoSize | Out-Host
    Get-ReplicaWalSegment -ReplicaPath $replica | Select-Object -Last 5 | Format-Table -AutoSize | Out-Host

    Write-Host "== 6. Restore-SqliteReplica into $restored"
    $result = Restore-SqliteReplica -ReplicaPath $replica -OutputPath $restored
    $result | Format-List | Out-Host

    Write-Host "== 7. Compare the restored database with the source"
    $source = & $writer dump --db $db | ConvertFrom-Json
    $copy = & $writer dump --db $restored | ConvertFrom-Json
    [pscustomobject]@{
        SourceRows    = $source.tables.t
        RestoredRows  = $copy.tables.t
        Integrity     = $copy.integrity
        ContentEqual  = $source.digest -eq $copy.digest
    } | Format-Table -AutoSize | Out-Host
    if ($source.digest -ne $copy.digest -or $copy.integrity -ne 'ok') {
        throw "The restored database differs from the source."
    }

    Write-Host "Demo passed: every committed row is in the restored database."
}
finally {
    if ($Keep) {
        Write-Host "Kept $work"
    }
    else {
        Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
    }
}
