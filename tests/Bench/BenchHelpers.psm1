#Requires -Version 7.6
<#
.SYNOPSIS
    Helpers of the side-by-side benchmark (Invoke-Bench.ps1): starting either replicator on the
    same litestream.yml, reading CPU and memory from /proc, timing whole commands, statistics.

.DESCRIPTION
    Builds on tests/Pester/TestHelpers.psm1 (imported first by Invoke-Bench.ps1): every process
    is started in its own process group through Start-TestProcess / Start-PwshProcess, so
    Stop-TestProcess -All cleans up whatever a failed case leaves behind.
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$script:ClockTicks = 100.0   # USER_HZ on Linux
$script:PageSize = 4096

function Get-BenchCpuSeconds {
    <# utime + stime of one process, in seconds (from /proc/<pid>/stat); $null when it is gone. #>
    param([Parameter(Mandatory)][int]$ProcessId)
    try { $text = [System.IO.File]::ReadAllText("/proc/$ProcessId/stat") } catch { return $null }
    # The command name may hold spaces: fields start after the last ')'.
    $fields = $text.Substring($text.LastIndexOf(')') + 2).Split(' ')
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    ([double]$fields[11] + [double]$fields[12]) / $script:ClockTicks
}

function Get-BenchMemory {
    <# VmHWM (peak RSS) and VmRSS of one process, in MB (from /proc/<pid>/status). #>
    param([Parameter(Mandatory)][int]$ProcessId)
    $result = [ordered]@{ PeakRssMB = $null; RssMB = $null }
    try { $lines = [System.IO.File]::ReadAllLines("/proc/$ProcessId/status") } catch { return [pscustomobject]$result }
    foreach ($line in $lines) {
        if ($line -match '^VmHWM:\s+(\d+) kB') { $result.PeakRssMB = [math]::Round([double]$Matches[1] / 1024, 1) }
        elseif ($line -match '^VmRSS:\s+(\d+) kB') { $result.RssMB = [math]::Round([double]$Matches[1] / 1024, 1) }
    }
    [pscustomobject]$result
}

function Get-BenchStat {
    <# Median, min, max (and p50/p90/p99 with -Percentiles) of numbers; nearest-rank percentiles. #>
    param([AllowEmptyCollection()][double[]]$Values = @(), [switch]$Percentiles)
    $sorted = @($Values | Sort-Object)
    $n = $sorted.Count
    $pick = { param($p) if ($n -eq 0) { $null } else { $sorted[[math]::Min($n - 1, [math]::Max(0, [int][math]::Ceiling($p * $n) - 1))] } }
    $median = if ($n -eq 0) { $null } elseif ($n % 2 -eq 1) { $sorted[($n - 1) / 2] } else { ($sorted[$n / 2 - 1] + $sorted[$n / 2]) / 2 }
    $o = [ordered]@{ N = $n; Median = $median; Min = $(if ($n) { $sorted[0] } else { $null }); Max = $(if ($n) { $sorted[-1] } else { $null }) }
    if ($Percentiles) {
        $o.P50 = & $pick 0.50
        $o.P90 = & $pick 0.90
        $o.P99 = & $pick 0.99
    }
    [pscustomobject]$o
}

function New-BenchConfig {
    <#
    .SYNOPSIS
        Writes a litestream.yml (read by both tools unchanged) with one replica per database: a
        local directory (-ReplicaRoot/<db name>) or S3 (-Endpoint, -Bucket, path <db name>).
        Only the databases and replicas: every other setting is each tool's default.
    #>
    param(
        [Parameter(Mandatory)][string]$Path,
        [Parameter(Mandatory)][string[]]$Database,
        [string]$ReplicaRoot,
        [string]$Endpoint,
        [string]$Bucket
    )
    $lines = [System.Collections.Generic.List[string]]::new()
    $lines.Add('dbs:')
    foreach ($db in $Database) {
        $name = [System.IO.Path]::GetFileName($db)
        $lines.Add("  - path: '$db'")
        $lines.Add('    replicas:')
        if ($Endpoint) {
            $lines.Add('      - type: s3')
            $lines.Add("        bucket: $Bucket")
            $lines.Add("        path: $name")
            $lines.Add("        endpoint: $Endpoint")
            $lines.Add('        region: us-east-1')
            $lines.Add('        force-path-style: true')
        }
        else {
            $lines.Add('      - type: file')
            $lines.Add("        path: '$(Join-Path $ReplicaRoot $name)'")
        }
    }
    [System.IO.File]::WriteAllLines($Path, $lines)
    $Path
}

function Start-BenchReplicator {
    <#
    .SYNOPSIS
        Starts one replicator on a litestream.yml with its defaults: 'litestream replicate -config'
        or, for 'ours', Start-SqliteReplication -ConfigPath in its own pwsh. Returns the TestProcess
        (Pid is the process that does the work for both tools).
    #>
    param(
        [Parameter(Mandatory)][ValidateSet('ours', 'litestream')][string]$Tool,
        [Parameter(Mandatory)][string]$ConfigPath,
        [Parameter(Mandatory)][string]$LogPath,
        [hashtable]$Environment
    )
    if ($Tool -eq 'litestream') {
        return Start-TestProcess -FilePath $env:SQLITEREPLICA_LITESTREAM -ArgumentList @('replicate', '-config', $ConfigPath) -LogPath $LogPath -Environment $Environment -Name 'litestream'
    }
    $q = { param($s) "'" + $s.Replace("'", "''") + "'" }
    $script = @"
Import-Module -Name $(& $q $env:SQLITEREPLICA_MODULE) -ErrorAction Stop
Start-SqliteReplication -ConfigPath $(& $q $ConfigPath) *>&1 | ForEach-Object { "`$_" }
"@
    Start-PwshProcess -Script $script -LogPath $LogPath -Environment $Environment -Name 'sqlitereplica'
}

function Stop-BenchProcess {
    <# SIGTERM (the replicators' final sync), wait, SIGKILL what is left. #>
    param([Parameter(Mandatory, ValueFromPipeline)][object]$Process, [double]$TimeoutSeconds = 30)
    process { $null = $Process | Stop-TestProcess -Signal TERM -TimeoutSeconds $TimeoutSeconds }
}

function Wait-BenchSnapshot {
    <# Waits until every local-directory replica under -ReplicaRoot (one per -Count database) holds a snapshot. #>
    param(
        [Parameter(Mandatory)][string]$ReplicaRoot,
        [int]$Count = 1,
        [object]$Process,
        [double]$TimeoutSeconds = 120
    )
    Wait-Until -TimeoutSeconds $TimeoutSeconds -IntervalMilliseconds 100 -Message "$Count replica snapshot(s) under $ReplicaRoot" -Condition {
        if ($Process -and $Process.HasExited) { throw "The replicator exited with code $($Process.ExitCode): $(Get-LogTail -Path $Process.LogPath -Lines 15)" }
        if (-not (Test-Path -LiteralPath $ReplicaRoot)) { return $false }
        @([System.IO.Directory]::EnumerateFiles($ReplicaRoot, '*.snapshot.lz4', 'AllDirectories')).Count -ge $Count
    } | Out-Null
}

function Measure-BenchCommand {
    <#
    .SYNOPSIS
        Runs a program to completion, timing the whole command; returns Seconds, ExitCode, Output, CpuSeconds (of the child, from its rusage).
    #>
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [hashtable]$Environment,
        [double]$TimeoutSeconds = 1800
    )
    # Through sh, whose 'times' reports the command's CPU (children's user and system time) on
    # stderr after it ends: .NET cannot read an exited process's CPU time on Linux.
    $psi = [System.Diagnostics.ProcessStartInfo]::new('/bin/sh')
    foreach ($a in @('-c', '"$@"; rc=$?; echo BENCH-TIMES >&2; times >&2; exit $rc', 'sh', $FilePath) + $ArgumentList) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    if ($Environment) { foreach ($k in $Environment.Keys) { $psi.Environment[$k] = [string]$Environment[$k] } }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $p = [System.Diagnostics.Process]::Start($psi)
    $stdout = $p.StandardOutput.ReadToEndAsync()
    $stderr = $p.StandardError.ReadToEndAsync()
    if (-not $p.WaitForExit([int]($TimeoutSeconds * 1000))) {
        $p.Kill($true)
        throw "'$FilePath $($ArgumentList -join ' ')' did not finish within $TimeoutSeconds s."
    }
    $p.WaitForExit()
    $watch.Stop()
    $err = $stderr.GetAwaiter().GetResult()
    $cpu = $null
    $at = $err.LastIndexOf('BENCH-TIMES')
    if ($at -ge 0) {
        # Two lines: the shell's own user/system time, then its children's ('0m1.234s 0m0.100s').
        $times = @($err.Substring($at) -split "`n" | Where-Object { $_ -match '^\d+m[\d.]+s \d+m[\d.]+s' })
        if ($times.Count -ge 2) {
            $cpu = 0.0
            foreach ($m in [regex]::Matches($times[1], '(\d+)m([\d.]+)s')) { $cpu += 60 * [double]$m.Groups[1].Value + [double]::Parse($m.Groups[2].Value, [cultureinfo]::InvariantCulture) }
        }
        $err = $err.Substring(0, $at)
    }
    [pscustomobject]@{
        Seconds    = $watch.Elapsed.TotalSeconds
        ExitCode   = $p.ExitCode
        Output     = $stdout.GetAwaiter().GetResult() + $err
        CpuSeconds = $cpu
    }
}

function Get-DirectorySizeMB {
    param([Parameter(Mandatory)][string]$Path, [string]$Filter = '*')
    if (-not (Test-Path -LiteralPath $Path)) { return 0 }
    $sum = 0L
    foreach ($f in [System.IO.Directory]::EnumerateFiles($Path, $Filter, 'AllDirectories')) {
        try { $sum += ([System.IO.FileInfo]::new($f)).Length } catch { }
    }
    [math]::Round($sum / 1MB, 2)
}

function Get-FileSizeMB {
    param([Parameter(Mandatory)][string]$Path)
    if (Test-Path -LiteralPath $Path) { [math]::Round(([System.IO.FileInfo]::new($Path)).Length / 1MB, 2) } else { 0 }
}

function Get-BenchMachine {
    <# A short description of the machine the figures were measured on. #>
    $cpu = (Get-Content /proc/cpuinfo | Where-Object { $_ -match '^model name' } | Select-Object -First 1) -replace '^model name\s*:\s*', ''
    $memKb = [double]((Get-Content /proc/meminfo | Where-Object { $_ -match '^MemTotal' }) -replace '\D', '')
    $os = if (Test-Path /etc/os-release) { ((Get-Content /etc/os-release | Where-Object { $_ -match '^PRETTY_NAME=' }) -replace '^PRETTY_NAME=|"', '') } else { 'Linux' }
    $load = (Get-Content /proc/loadavg) -split ' ' | Select-Object -First 3
    [pscustomobject][ordered]@{
        Cpu          = $cpu
        Cores        = [Environment]::ProcessorCount
        MemoryGB     = [math]::Round($memKb / 1MB, 1)
        Os           = $os
        Kernel       = (Get-Content /proc/sys/kernel/osrelease)
        DotNet       = [System.Runtime.InteropServices.RuntimeInformation]::FrameworkDescription
        PowerShell   = $PSVersionTable.PSVersion.ToString()
        LoadAtStart  = $load -join ' '
    }
}

Export-ModuleMember -Function @(
    'Get-BenchCpuSeconds', 'Get-BenchMemory', 'Get-BenchStat', 'New-BenchConfig', 'Start-BenchReplicator',
    'Stop-BenchProcess', 'Wait-BenchSnapshot', 'Measure-BenchCommand', 'Get-DirectorySizeMB', 'Get-FileSizeMB',
    'Get-BenchMachine'
)
