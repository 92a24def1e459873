#Requires -Version 7.4
<#
.SYNOPSIS
    Helpers for SqliteReplica's Pester tests that run real processes.

.DESCRIPTION
    Waiting (Wait-Until, Wait-LogLine), child processes in their own process
    groups and real signals (Start-TestProcess, Send-ProcessGroupSignal,
    Wait-ProcessGroupExit, Stop-TestProcess), the test writer program
    (Invoke-Writer, Start-Writer, Get-DbDump, New-TestDatabase), the replicator
    in a separate pwsh (Start-ReplicatorProcess), the real Litestream binary
    (Invoke-Litestream, Start-LitestreamReplicate), tmpfs mounts for read-only
    and disk-full tests (New-TmpfsMount, Remove-TmpfsMount) and a parsed view
    of a Litestream v0.3 replica directory (Get-ReplicaFile).

    Environment variables set by the test runner:
      SQLITEREPLICA_MODULE      absolute path of the built module manifest (.psd1)
      SQLITEREPLICA_LITESTREAM  path of the litestream v0.3.13 binary
      SQLITEREPLICA_WRITER      path of the test writer (.dll run with dotnet, or an apphost)

    Linux only. Signals, process groups and mounts need the setsid, kill and
    mount programs; tmpfs mounts need root.

    Every process and mount made here is tracked. Stop-TestProcess -All and
    Remove-TmpfsMount -All clean up explicitly (call them in AfterAll); removing
    the module or exiting pwsh kills what is left and unmounts the mounts.
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

# Linux signal numbers (x86-64 and arm64 agree on these).
$script:SignalNumbers = [ordered]@{
    HUP = 1; INT = 2; QUIT = 3; KILL = 9; USR1 = 10; USR2 = 12; TERM = 15; CONT = 18; STOP = 19
}

# Processes started by Start-TestProcess and mounts made by New-TmpfsMount,
# shared with the exit hook through MessageData.
$script:TrackedProcesses = [System.Collections.Generic.List[object]]::new()
$script:TrackedMounts = [System.Collections.Generic.List[string]]::new()

$script:CommittedPattern = [regex]::new('^committed\s+(\d+)\s*$', 'Multiline, CultureInvariant')

#region Internal helpers

function Get-NativeCommandPath {
    # Resolves a program on PATH to its full path (PowerShell aliases such as
    # 'kill' or 'mount' must never be used by accident).
    param([Parameter(Mandatory)][string]$Name)
    $command = Get-Command -Name $Name -CommandType Application -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if (-not $command) {
        throw "The program '$Name' was not found on PATH; the test helpers need it."
    }
    $command.Source
}

function Get-ProcStat {
    # Parses /proc/<pid>/stat. Returns $null when the process does not exist.
    param([Parameter(Mandatory)][int]$ProcessId)
    try {
        $text = [System.IO.File]::ReadAllText("/proc/$ProcessId/stat")
    }
    catch {
        return $null
    }
    # The command name is in parentheses and may itself contain spaces or ')'.
    $open = $text.IndexOf('(')
    $close = $text.LastIndexOf(')')
    if ($open -lt 0 -or $close -lt $open) { return $null }
    $fields = $text.Substring($close + 2).Split(' ')
    [pscustomobject]@{
        Pid       = $ProcessId
        Comm      = $text.Substring($open + 1, $close - $open - 1)
        State     = $fields[0]
        Ppid      = [int]$fields[1]
        Pgid      = [int]$fields[2]
        Sid       = [int]$fields[3]
        # Field 22 of stat: start time in clock ticks since boot.
        StartTime = [long]$fields[19]
    }
}

function Get-ProcCommandLine {
    param([Parameter(Mandatory)][int]$ProcessId)
    try {
        ([System.IO.File]::ReadAllText("/proc/$ProcessId/cmdline") -replace "`0", ' ').Trim()
    }
    catch {
        ''
    }
}

function Test-GroupIdentity {
    # $true when the group $Pgid may still be the one whose leader started at
    # $LeaderStartTime: either the leader is alive with that start time, or the
    # leader is gone (Linux never hands a live group's id to a new process).
    param([int]$Pgid, [long]$LeaderStartTime)
    if ($LeaderStartTime -le 0) { return $true }
    $leader = Get-ProcStat -ProcessId $Pgid
    (-not $leader) -or ($leader.StartTime -eq $LeaderStartTime)
}

function Get-DotnetHostPath {
    # The dotnet host running this pwsh when pwsh runs as 'dotnet pwsh.dll';
    # else DOTNET_HOST_PATH or dotnet on PATH.
    $processPath = [Environment]::ProcessPath
    if ($processPath -and [System.IO.Path]::GetFileNameWithoutExtension($processPath) -eq 'dotnet') {
        return $processPath
    }
    if ($env:DOTNET_HOST_PATH -and (Test-Path -LiteralPath $env:DOTNET_HOST_PATH -PathType Leaf)) {
        return $env:DOTNET_HOST_PATH
    }
    Get-NativeCommandPath -Name 'dotnet'
}

function Get-RequiredEnvironmentPath {
    param([Parameter(Mandatory)][string]$Name, [switch]$Directory)
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrWhiteSpace($value)) {
        throw "The environment variable $Name is not set; the test runner must set it."
    }
    $type = if ($Directory) { 'Container' } else { 'Leaf' }
    if (-not (Test-Path -LiteralPath $value -PathType $type)) {
        throw "$Name points to '$value', which does not exist."
    }
    $value
}

function ConvertTo-FullPath {
    # Resolves a path relative to PowerShell's current location (not the
    # process working directory), without requiring it to exist.
    param([Parameter(Mandatory)][string]$Path)
    $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Path)
}

function ConvertTo-SingleQuotedString {
    param([AllowEmptyString()][string]$Value)
    "'" + $Value.Replace("'", "''") + "'"
}

function ConvertTo-YamlString {
    param([AllowEmptyString()][string]$Value)
    '"' + $Value.Replace('\', '\\').Replace('"', '\"') + '"'
}

function Format-CommandLine {
    param([string]$FilePath, [string[]]$ArgumentList)
    $parts = foreach ($item in @($FilePath) + @($ArgumentList)) {
        if ($item -match '[\s"''$`\\]' -or $item -eq '') { ConvertTo-SingleQuotedString $item } else { $item }
    }
    $parts -join ' '
}

function Read-SharedText {
    # Reads a file that another process may be writing. Returns '' if missing.
    param([Parameter(Mandatory)][string]$Path)
    try {
        $stream = [System.IO.FileStream]::new($Path, 'Open', 'Read', 'ReadWrite, Delete')
    }
    catch [System.IO.FileNotFoundException], [System.IO.DirectoryNotFoundException] {
        return ''
    }
    try {
        $reader = [System.IO.StreamReader]::new($stream, [System.Text.UTF8Encoding]::new($false))
        $reader.ReadToEnd()
    }
    finally {
        $stream.Dispose()
    }
}

function Test-MountPoint {
    param([Parameter(Mandatory)][string]$Path)
    $target = $Path.TrimEnd('/')
    foreach ($line in [System.IO.File]::ReadAllLines('/proc/self/mountinfo')) {
        # Field 5 is the mount point, with space, tab, newline and '\' octal-escaped.
        $mountPoint = $line.Split(' ')[4] -replace '\\040', ' ' -replace '\\011', "`t" -replace '\\012', "`n" -replace '\\134', '\'
        if ($mountPoint -eq $target) { return $true }
    }
    $false
}

function Invoke-TestResourceCleanup {
    # Last-resort cleanup: SIGKILL every tracked group still alive, then
    # unmount every tracked tmpfs. Never throws.
    param($Processes, $Mounts)
    $kill = Get-Command -Name kill -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    foreach ($process in @($Processes)) {
        try {
            if ($kill -and (Test-GroupIdentity -Pgid $process.Pgid -LeaderStartTime $process.LeaderStartTime)) {
                & $kill.Source -s KILL -- "-$($process.Pgid)" 2>$null
            }
        }
        catch { }
    }
    foreach ($mount in @($Mounts)) {
        try { & umount -l -- $mount 2>$null } catch { }
    }
}

#endregion

#region Waiting

function Wait-Until {
    <#
    .SYNOPSIS
        Polls a condition until it returns a true value; throws a clear message on timeout.
    .DESCRIPTION
        Runs Condition every IntervalMilliseconds until its output is true by
        PowerShell rules, and returns that output. An exception thrown by the
        condition counts as "not yet"; the last one is quoted in the timeout error.
    .EXAMPLE
        Wait-Until { (Get-ReplicaFile $replica).Count -ge 2 } -TimeoutSeconds 20 -Message 'two replica files'
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][scriptblock]$Condition,
        [double]$TimeoutSeconds = 30,
        [string]$Message = "condition { $Condition }",
        [int]$IntervalMilliseconds = 100
    )
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $lastError = $null
    while ($true) {
        try {
            $result = & $Condition
            if ($result) { return $result }
            $lastError = $null
        }
        catch {
            $lastError = $_
        }
        if ($watch.Elapsed.TotalSeconds -ge $TimeoutSeconds) { break }
        Start-Sleep -Milliseconds $IntervalMilliseconds
    }
    $text = "Timed out after $TimeoutSeconds s waiting for: $Message."
    if ($lastError) { $text += " Last error from the condition: $($lastError.Exception.Message)" }
    throw [System.TimeoutException]::new($text)
}

function Get-LogTail {
    <#
    .SYNOPSIS
        Returns the last lines of a (possibly still growing) log file as one string.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Path,
        [int]$Lines = 40
    )
    $text = Read-SharedText -Path $Path
    $all = $text -split "`r?`n"
    if ($all.Count -gt 0 -and $all[-1] -eq '') { $all = $all[0..($all.Count - 2)] }
    ($all | Select-Object -Last $Lines) -join [Environment]::NewLine
}

function Wait-LogLine {
    <#
    .SYNOPSIS
        Waits until a regular expression matches in a log file and returns the match.
    .DESCRIPTION
        Reads the whole file on each poll (sharing it with its writer) and
        searches from character Offset on, in multiline mode (^ and $ match at
        line ends). Returns an object with Value, Groups, Line (the whole line of
        the match), Match and EndOffset (the offset just after that line: pass it
        as -Offset to wait for a later line). With -Count N it waits for the N-th
        match. With -Process (a TestProcess or a System.Diagnostics.Process)
        it fails as soon as that process has exited without the line. The timeout error quotes the end of the log.
    .EXAMPLE
        $m = Wait-LogLine -Path $ls.LogPath -Pattern 'new generation.*generation=(?<gen>[0-9a-f]{16})'
        $m.Groups['gen'].Value
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Path,
        [Parameter(Mandatory, Position = 1)][string]$Pattern,
        [double]$TimeoutSeconds = 30,
        [int]$Offset = 0,
        [ValidateRange(1, [int]::MaxValue)][int]$Count = 1,
        [object]$Process,
        [int]$IntervalMilliseconds = 100
    )
    $regex = [regex]::new($Pattern, 'Multiline, CultureInvariant')
    $watched = if ($null -eq $Process) { $null } elseif ($Process -is [System.Diagnostics.Process]) { $Process } else { $Process.Process }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($true) {
        $exitedBefore = $watched -and $watched.HasExited
        $text = Read-SharedText -Path $Path
        if ($Offset -le $text.Length) {
            $found = $regex.Matches($text, $Offset)
            if ($found.Count -ge $Count) {
                $match = $found[$Count - 1]
                $lineStart = if ($match.Index -eq 0) { 0 } else { $text.LastIndexOf([char]10, $match.Index - 1) + 1 }
                $lineEnd = $text.IndexOf([char]10, $match.Index + [Math]::Max(0, $match.Length - 1))
                $endOffset = if ($lineEnd -lt 0) { $text.Length } else { $lineEnd + 1 }
                if ($lineEnd -lt 0) { $lineEnd = $text.Length }
                return [pscustomobject]@{
                    PSTypeName = 'SqliteReplica.Tests.LogMatch'
                    Value      = $match.Value
                    Groups     = $match.Groups
                    Line       = $text.Substring($lineStart, $lineEnd - $lineStart).TrimEnd("`r")
                    EndOffset  = $endOffset
                    Match      = $match
                }
            }
        }
        if ($exitedBefore) {
            throw "Process $($watched.Id) exited with code $($watched.ExitCode) before /$Pattern/ appeared in $Path. End of the log:$([Environment]::NewLine)$(Get-LogTail -Path $Path)"
        }
        if ($watch.Elapsed.TotalSeconds -ge $TimeoutSeconds) {
            throw [System.TimeoutException]::new("Timed out after $TimeoutSeconds s waiting for /$Pattern/ (match $Count, from offset $Offset) in $Path. End of the log:$([Environment]::NewLine)$(Get-LogTail -Path $Path)")
        }
        Start-Sleep -Milliseconds $IntervalMilliseconds
    }
}

#endregion

#region Processes and process groups

function New-TestDirectory {
    <#
    .SYNOPSIS
        Creates a new empty directory under the system temp folder (or under -Parent) and returns its path.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [string]$Prefix = 'sqlitereplica-test',
        [string]$Parent = [System.IO.Path]::GetTempPath()
    )
    $path = Join-Path (ConvertTo-FullPath $Parent) ("{0}-{1}" -f $Prefix, [guid]::NewGuid().ToString('N').Substring(0, 12))
    $null = [System.IO.Directory]::CreateDirectory($path)
    $path
}

function Invoke-NativeProcess {
    <#
    .SYNOPSIS
        Runs a program to completion and returns ExitCode, StdOut, StdErr and Lines (stdout lines).
    .DESCRIPTION
        Arguments are passed verbatim (no shell). With -MergeStandardError,
        stderr is sent into stdout by the OS so the order is kept; StdErr is then
        empty. On timeout the process is killed and a TimeoutException quotes
        the output so far.
    #>
    [CmdletBinding(PositionalBinding = $false)]
    param(
        [Parameter(Mandatory, Position = 0)][string]$FilePath,
        [Parameter(Position = 1, ValueFromRemainingArguments)][object[]]$ArgumentList = @(),
        [double]$TimeoutSeconds = 120,
        [hashtable]$Environment,
        [string]$WorkingDirectory,
        [switch]$MergeStandardError
    )
    $arguments = [string[]]@($ArgumentList | ForEach-Object { [string]$_ })
    if ($MergeStandardError) {
        $psi = [System.Diagnostics.ProcessStartInfo]::new('/bin/sh')
        foreach ($item in @('-c', 'exec "$@" 2>&1', 'sh', $FilePath) + $arguments) { $psi.ArgumentList.Add($item) }
    }
    else {
        $psi = [System.Diagnostics.ProcessStartInfo]::new($FilePath)
        foreach ($item in $arguments) { $psi.ArgumentList.Add($item) }
    }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.StandardOutputEncoding = [System.Text.UTF8Encoding]::new($false)
    $psi.StandardErrorEncoding = [System.Text.UTF8Encoding]::new($false)
    $psi.WorkingDirectory = if ($WorkingDirectory) { ConvertTo-FullPath $WorkingDirectory } else { (Get-Location -PSProvider FileSystem).ProviderPath }
    if ($Environment) {
        foreach ($key in $Environment.Keys) {
            if ($null -eq $Environment[$key]) { $null = $psi.Environment.Remove($key) } else { $psi.Environment[$key] = [string]$Environment[$key] }
        }
    }
    $commandLine = Format-CommandLine -FilePath $FilePath -ArgumentList $arguments
    Write-Verbose "Running: $commandLine"
    $process = [System.Diagnostics.Process]::Start($psi)
    try {
        $process.StandardInput.Close()
        $stdoutTask = $process.StandardOutput.ReadToEndAsync()
        $stderrTask = $process.StandardError.ReadToEndAsync()
        if (-not $process.WaitForExit([int]($TimeoutSeconds * 1000))) {
            $process.Kill($true)
            $null = $process.WaitForExit(5000)
            $partial = $stdoutTask.GetAwaiter().GetResult() + $stderrTask.GetAwaiter().GetResult()
            throw [System.TimeoutException]::new("Timed out after $TimeoutSeconds s: $commandLine$([Environment]::NewLine)$partial")
        }
        $process.WaitForExit()
        $stdout = $stdoutTask.GetAwaiter().GetResult()
        $stderr = $stderrTask.GetAwaiter().GetResult()
        $lines = @($stdout -split "`r?`n")
        if ($lines.Count -gt 0 -and $lines[-1] -eq '') { $lines = @($lines | Select-Object -SkipLast 1) }
        [pscustomobject]@{
            PSTypeName  = 'SqliteReplica.Tests.NativeResult'
            CommandLine = $commandLine
            ExitCode    = $process.ExitCode
            StdOut      = $stdout
            StdErr      = $stderr
            Lines       = [string[]]$lines
        }
    }
    finally {
        $process.Dispose()
    }
}

function Start-TestProcess {
    <#
    .SYNOPSIS
        Starts a program in the background, in its own process group and session, with its output in a log file.
    .DESCRIPTION
        The program is started through /bin/sh and setsid with exec, so it keeps
        the pid of the started process and is the leader of a new process group
        (Pgid = Pid) that holds it and its children only. stdout and stderr go
        straight into LogPath (stderr into ErrorLogPath if given) and stdin is
        /dev/null, so the child never holds this process's pipes and never
        blocks on a full pipe.

        Returns a SqliteReplica.Tests.TestProcess object: Name, Pid, Pgid,
        LeaderStartTime, LogPath, ErrorLogPath, CommandLine, Process (the .NET
        Process, for WaitForExit and ExitCode), the script properties HasExited
        and ExitCode, and the method ReadLog(). Pipe it to
        Send-ProcessGroupSignal, Wait-ProcessGroupExit, Wait-TestProcess or
        Stop-TestProcess.
    .EXAMPLE
        $p = Start-TestProcess -FilePath sleep -ArgumentList 30 -LogPath "$TestDrive/sleep.log"
        $p | Stop-TestProcess
    #>
    [CmdletBinding(PositionalBinding = $false)]
    param(
        [Parameter(Mandatory, Position = 0)][string]$FilePath,
        [Parameter(Position = 1, ValueFromRemainingArguments)][object[]]$ArgumentList = @(),
        [string]$LogPath,
        [string]$ErrorLogPath,
        [switch]$Append,
        [hashtable]$Environment,
        [string]$WorkingDirectory,
        [string]$Name
    )
    $arguments = [string[]]@($ArgumentList | ForEach-Object { [string]$_ })
    if ($FilePath.Contains('/')) {
        $FilePath = ConvertTo-FullPath $FilePath
        if (-not (Test-Path -LiteralPath $FilePath -PathType Leaf)) { throw "Cannot start '$FilePath': no such file." }
    }
    else {
        $FilePath = Get-NativeCommandPath -Name $FilePath
    }
    if (-not $Name) { $Name = [System.IO.Path]::GetFileName($FilePath) }
    if (-not $LogPath) { $LogPath = Join-Path (New-TestDirectory -Prefix "log-$Name") "$Name.log" }
    $LogPath = ConvertTo-FullPath $LogPath
    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($LogPath))
    if ($ErrorLogPath) {
        $ErrorLogPath = ConvertTo-FullPath $ErrorLogPath
        $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($ErrorLogPath))
    }
    $redirect = if ($Append) { '>>' } else { '>' }
    $errRedirect = if ($ErrorLogPath) { "2$redirect`"`$err`"" } else { '2>&1' }
    $shellScript = "setsid=`$1; out=`$2; err=`$3; shift 3; exec `"`$setsid`" -w `"`$@`" $redirect`"`$out`" $errRedirect </dev/null"

    $psi = [System.Diagnostics.ProcessStartInfo]::new('/bin/sh')
    $setsid = Get-NativeCommandPath -Name 'setsid'
    foreach ($item in @('-c', $shellScript, 'sh', $setsid, $LogPath, [string]$ErrorLogPath, $FilePath) + $arguments) { $psi.ArgumentList.Add($item) }
    $psi.UseShellExecute = $false
    $psi.WorkingDirectory = if ($WorkingDirectory) { ConvertTo-FullPath $WorkingDirectory } else { (Get-Location -PSProvider FileSystem).ProviderPath }
    if ($Environment) {
        foreach ($key in $Environment.Keys) {
            if ($null -eq $Environment[$key]) { $null = $psi.Environment.Remove($key) } else { $psi.Environment[$key] = [string]$Environment[$key] }
        }
    }
    $commandLine = Format-CommandLine -FilePath $FilePath -ArgumentList $arguments
    Write-Verbose "Starting in a new process group: $commandLine > $LogPath"
    $process = [System.Diagnostics.Process]::Start($psi)

    # setsid runs in the exec'd process itself (it only forks when already a
    # group leader, and then -w makes it wait): wait until the group exists.
    $pgid = $process.Id
    $leaderStart = 0L
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($watch.Elapsed.TotalSeconds -lt 10) {
        $stat = Get-ProcStat -ProcessId $process.Id
        if (-not $stat -or $stat.State -eq 'Z') { break }
        if ($stat.Pgid -eq $process.Id) { $leaderStart = $stat.StartTime; break }
        if ($stat.Comm -eq 'setsid') {
            $child = foreach ($dir in [System.IO.Directory]::EnumerateDirectories('/proc')) {
                $id = 0
                if ([int]::TryParse([System.IO.Path]::GetFileName($dir), [ref]$id)) {
                    $s = Get-ProcStat -ProcessId $id
                    if ($s -and $s.Ppid -eq $process.Id -and $s.Pgid -eq $id) { $s }
                }
            }
            if ($child) { $pgid = @($child)[0].Pid; $leaderStart = @($child)[0].StartTime; break }
        }
        Start-Sleep -Milliseconds 5
    }

    $result = [pscustomobject]@{
        PSTypeName      = 'SqliteReplica.Tests.TestProcess'
        Name            = $Name
        Pid             = $process.Id
        Pgid            = $pgid
        LeaderStartTime = $leaderStart
        LogPath         = $LogPath
        ErrorLogPath    = $ErrorLogPath
        CommandLine     = $commandLine
        Process         = $process
    }
    $result | Add-Member -MemberType ScriptProperty -Name HasExited -Value { $this.Process.HasExited }
    $result | Add-Member -MemberType ScriptProperty -Name ExitCode -Value { if ($this.Process.HasExited) { $this.Process.ExitCode } else { $null } }
    $result | Add-Member -MemberType ScriptMethod -Name ReadLog -Value { Read-SharedText -Path $this.LogPath }
    $result | Add-Member -MemberType ScriptMethod -Name ToString -Value { "$($this.Name) pid=$($this.Pid) pgid=$($this.Pgid)" } -Force
    $script:TrackedProcesses.Add($result)
    $result
}

function Get-ProcessGroupMember {
    <#
    .SYNOPSIS
        Lists the live (non-zombie) processes of a process group by scanning /proc.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)][int]$Pgid
    )
    process {
        foreach ($dir in [System.IO.Directory]::EnumerateDirectories('/proc')) {
            $id = 0
            if (-not [int]::TryParse([System.IO.Path]::GetFileName($dir), [ref]$id)) { continue }
            $stat = Get-ProcStat -ProcessId $id
            if ($stat -and $stat.Pgid -eq $Pgid -and $stat.State -ne 'Z' -and $stat.State -ne 'X') {
                $stat | Add-Member -NotePropertyName CommandLine -NotePropertyValue (Get-ProcCommandLine -ProcessId $id) -PassThru
            }
        }
    }
}

function Send-ProcessGroupSignal {
    <#
    .SYNOPSIS
        Sends a real signal to every process of a process group (or, with -ProcessId, to one process).
    .DESCRIPTION
        Uses the kill program ('kill -s SIG -- -PGID'). Accepts a TestProcess
        object from the pipeline (its Pgid and LeaderStartTime bind by name; a
        group whose leader was replaced by an unrelated process is not
        signalled). Throws when no process received the signal, unless
        -IgnoreMissing. Does not wait: use Wait-ProcessGroupExit.
        Alias: Stop-ProcessGroup.
    .EXAMPLE
        $replicator | Send-ProcessGroupSignal -Signal STOP
    #>
    [CmdletBinding(DefaultParameterSetName = 'Group')]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Group', Position = 0, ValueFromPipelineByPropertyName)][int]$Pgid,
        [Parameter(Mandatory, ParameterSetName = 'Process')][int]$ProcessId,
        [ValidateSet('TERM', 'KILL', 'INT', 'STOP', 'CONT', 'HUP', 'QUIT', 'USR1', 'USR2')]
        [string]$Signal = 'TERM',
        [Parameter(ParameterSetName = 'Group', ValueFromPipelineByPropertyName)][long]$LeaderStartTime = 0,
        [switch]$IgnoreMissing
    )
    process {
        $target = if ($PSCmdlet.ParameterSetName -eq 'Group') {
            if ($Pgid -le 1) { throw "Refusing to signal process group $Pgid." }
            if (-not (Test-GroupIdentity -Pgid $Pgid -LeaderStartTime $LeaderStartTime)) {
                if ($IgnoreMissing) { return }
                throw "Process group $Pgid no longer exists (its id now belongs to another process)."
            }
            "-$Pgid"
        }
        else {
            if ($ProcessId -le 1) { throw "Refusing to signal process $ProcessId." }
            "$ProcessId"
        }
        $kill = Get-NativeCommandPath -Name 'kill'
        Write-Verbose "kill -s $Signal -- $target"
        $output = & $kill -s $Signal -- $target 2>&1
        if ($LASTEXITCODE -ne 0 -and -not $IgnoreMissing) {
            throw "kill -s $Signal -- $target failed (exit $LASTEXITCODE): $output"
        }
    }
}

function Wait-ProcessGroupExit {
    <#
    .SYNOPSIS
        Waits until no live process of a process group remains; throws on timeout listing the survivors.
    .DESCRIPTION
        Scans /proc (zombies do not count). Returns the elapsed seconds.
    #>
    [CmdletBinding()]
    [OutputType([double])]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)][int]$Pgid,
        [double]$TimeoutSeconds = 30,
        [int]$IntervalMilliseconds = 50
    )
    process {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        while ($true) {
            $members = @(Get-ProcessGroupMember -Pgid $Pgid)
            if ($members.Count -eq 0) { return $watch.Elapsed.TotalSeconds }
            if ($watch.Elapsed.TotalSeconds -ge $TimeoutSeconds) {
                $list = ($members | ForEach-Object { "  pid $($_.Pid) state $($_.State): $($_.CommandLine)" }) -join [Environment]::NewLine
                throw [System.TimeoutException]::new("Process group $Pgid still has $($members.Count) live process(es) after $TimeoutSeconds s:$([Environment]::NewLine)$list")
            }
            Start-Sleep -Milliseconds $IntervalMilliseconds
        }
    }
}

function Wait-TestProcess {
    <#
    .SYNOPSIS
        Waits for a test process (and its whole group) to exit and returns its exit code; throws on timeout.
    .DESCRIPTION
        The exit code is 128 + signal number when the process died of a signal
        (137 for KILL, 143 for an unhandled TERM).
    #>
    [CmdletBinding()]
    [OutputType([int])]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipeline)][object]$InputObject,
        [double]$TimeoutSeconds = 60
    )
    process {
        if (-not $InputObject.Process.WaitForExit([int]($TimeoutSeconds * 1000))) {
            throw [System.TimeoutException]::new("$($InputObject.Name) (pid $($InputObject.Pid)) did not exit within $TimeoutSeconds s. End of the log:$([Environment]::NewLine)$(Get-LogTail -Path $InputObject.LogPath)")
        }
        $InputObject.Process.WaitForExit()
        $null = Wait-ProcessGroupExit -Pgid $InputObject.Pgid -TimeoutSeconds ([Math]::Max(5, $TimeoutSeconds / 4))
        $InputObject.Process.ExitCode
    }
}

function Stop-TestProcess {
    <#
    .SYNOPSIS
        Stops a test process group: sends a signal (TERM by default), waits, then SIGKILLs what is left.
    .DESCRIPTION
        Returns the leader's exit code. With -NoKill a timeout throws instead of
        escalating to SIGKILL (use it when the test asserts a graceful
        shutdown). A group that is already gone is fine. -All stops every group
        started by this module that is still alive (for AfterAll).
    .EXAMPLE
        $code = $replicator | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill
    #>
    [CmdletBinding(DefaultParameterSetName = 'One')]
    param(
        [Parameter(Mandatory, ParameterSetName = 'One', Position = 0, ValueFromPipeline)][object]$InputObject,
        [Parameter(Mandatory, ParameterSetName = 'All')][switch]$All,
        [ValidateSet('TERM', 'KILL', 'INT', 'HUP', 'QUIT')][string]$Signal = 'TERM',
        [double]$TimeoutSeconds = 15,
        [switch]$NoKill
    )
    process {
        $targets = if ($All) { @($script:TrackedProcesses) } else { @($InputObject) }
        foreach ($target in $targets) {
            if (-not (Test-GroupIdentity -Pgid $target.Pgid -LeaderStartTime $target.LeaderStartTime)) { continue }
            if (@(Get-ProcessGroupMember -Pgid $target.Pgid).Count -gt 0) {
                Send-ProcessGroupSignal -Pgid $target.Pgid -Signal $Signal -IgnoreMissing
                # A stopped (SIGSTOP) group would never act on TERM.
                if ($Signal -ne 'KILL') { Send-ProcessGroupSignal -Pgid $target.Pgid -Signal CONT -IgnoreMissing }
                try {
                    $null = Wait-ProcessGroupExit -Pgid $target.Pgid -TimeoutSeconds $TimeoutSeconds
                }
                catch [System.TimeoutException] {
                    if ($NoKill) { throw }
                    Write-Warning "$($target.Name) (pgid $($target.Pgid)) ignored SIG$Signal for $TimeoutSeconds s; sending SIGKILL."
                    Send-ProcessGroupSignal -Pgid $target.Pgid -Signal KILL -IgnoreMissing
                    $null = Wait-ProcessGroupExit -Pgid $target.Pgid -TimeoutSeconds 10
                }
            }
            if ($target.Process.WaitForExit(10000)) {
                $target.Process.WaitForExit()
                if (-not $All) { $target.Process.ExitCode }
            }
        }
        if ($All) {
            $script:TrackedProcesses.RemoveAll([Predicate[object]] { param($p) $p.Process.HasExited }) | Out-Null
        }
    }
}

#endregion

#region pwsh child processes and the replicator

function Get-PwshCommand {
    <#
    .SYNOPSIS
        Returns how to start a child pwsh that is ONE process: FilePath and PrefixArguments.
    .DESCRIPTION
        When this pwsh runs as 'dotnet pwsh.dll' (a .NET tool: 'dotnet pwsh' is
        three processes, muxer, shim and pwsh.dll), the child is started as
        '<dotnet host> <PSHOME>/pwsh.dll', so the process started is pwsh itself
        and signals reach it directly. With a native pwsh (apphost) the child is
        started with the same executable.
    #>
    [CmdletBinding()]
    param()
    $processPath = [Environment]::ProcessPath
    if ([System.IO.Path]::GetFileNameWithoutExtension($processPath) -eq 'dotnet') {
        $dll = Join-Path $PSHOME 'pwsh.dll'
        if (-not (Test-Path -LiteralPath $dll -PathType Leaf)) {
            $dll = [Environment]::GetCommandLineArgs()[0]
        }
        [pscustomobject]@{ FilePath = $processPath; PrefixArguments = [string[]]@($dll) }
    }
    else {
        [pscustomobject]@{ FilePath = $processPath; PrefixArguments = [string[]]@() }
    }
}

function Start-PwshProcess {
    <#
    .SYNOPSIS
        Runs a PowerShell script in a separate pwsh process (own process group, output in a log file).
    .DESCRIPTION
        The script is written next to the log and run with
        'pwsh -NoProfile -NonInteractive -File'; plain-text output rendering and
        no progress are set first. Returns a TestProcess (see Start-TestProcess).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Script,
        [string]$LogPath,
        [hashtable]$Environment,
        [string]$WorkingDirectory,
        [string]$Name = 'pwsh'
    )
    if (-not $LogPath) { $LogPath = Join-Path (New-TestDirectory -Prefix "log-$Name") "$Name.log" }
    $LogPath = ConvertTo-FullPath $LogPath
    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($LogPath))
    $scriptPath = [System.IO.Path]::ChangeExtension($LogPath, $null).TrimEnd('.') + '-' + [guid]::NewGuid().ToString('N').Substring(0, 8) + '.ps1'
    $preamble = @(
        '$PSStyle.OutputRendering = ''PlainText'''
        '$ProgressPreference = ''SilentlyContinue'''
    ) -join [Environment]::NewLine
    [System.IO.File]::WriteAllText($scriptPath, $preamble + [Environment]::NewLine + $Script + [Environment]::NewLine)
    $pwsh = Get-PwshCommand
    $arguments = @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $scriptPath)
    Start-TestProcess -FilePath $pwsh.FilePath -ArgumentList $arguments -LogPath $LogPath -Environment $Environment -WorkingDirectory $WorkingDirectory -Name $Name |
        Add-Member -NotePropertyName ScriptPath -NotePropertyValue $scriptPath -PassThru
}

function Start-ReplicatorProcess {
    <#
    .SYNOPSIS
        Runs Start-SqliteReplication (from the built module) in a separate pwsh process in its own process group.
    .DESCRIPTION
        The child imports the module from -ModulePath (default
        $env:SQLITEREPLICA_MODULE) and runs
        'Start-SqliteReplication @Parameters <ArgumentString> -Verbose *>&1',
        so every stream, verbose lines included, lands in the log file. The
        Parameters hashtable crosses over as CLIXML (switches: use $true).
        Returns a TestProcess (Pid, Pgid, LogPath, Process, ...). Signal it
        with Send-ProcessGroupSignal and wait with Wait-TestProcess.
    .EXAMPLE
        $r = Start-ReplicatorProcess -Parameters @{ ConfigPath = $config } -LogPath "$TestDrive/replicator.log"
        Wait-LogLine -Path $r.LogPath -Pattern 'snapshot' -Process $r
        $r | Send-ProcessGroupSignal -Signal TERM
        $r | Wait-TestProcess -TimeoutSeconds 30 | Should -Be 0
    #>
    [CmdletBinding()]
    param(
        [hashtable]$Parameters = @{},
        [string]$ArgumentString = '',
        [string]$CommandName = 'Start-SqliteReplication',
        [string]$ModulePath,
        [string]$LogPath,
        [hashtable]$Environment,
        [string]$WorkingDirectory,
        [switch]$NoVerbose
    )
    if (-not $ModulePath) { $ModulePath = Get-RequiredEnvironmentPath -Name 'SQLITEREPLICA_MODULE' }
    $ModulePath = ConvertTo-FullPath $ModulePath
    if (-not $LogPath) { $LogPath = Join-Path (New-TestDirectory -Prefix 'replicator') 'replicator.log' }
    $LogPath = ConvertTo-FullPath $LogPath
    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($LogPath))
    $parametersPath = [System.IO.Path]::ChangeExtension($LogPath, $null).TrimEnd('.') + '-' + [guid]::NewGuid().ToString('N').Substring(0, 8) + '.parameters.xml'
    $Parameters | Export-Clixml -LiteralPath $parametersPath -Depth 5
    $verbose = if ($NoVerbose) { '' } else { '-Verbose' }
    $script = @(
        "Import-Module -Name $(ConvertTo-SingleQuotedString $ModulePath) -ErrorAction Stop"
        "`$parameters = Import-Clixml -LiteralPath $(ConvertTo-SingleQuotedString $parametersPath)"
        "$CommandName @parameters $ArgumentString $verbose *>&1"
    ) -join [Environment]::NewLine
    Start-PwshProcess -Script $script -LogPath $LogPath -Environment $Environment -WorkingDirectory $WorkingDirectory -Name 'replicator'
}

#endregion

#region The test writer

function Get-WriterCommand {
    <#
    .SYNOPSIS
        Returns FilePath and PrefixArguments for running $env:SQLITEREPLICA_WRITER (a .dll through dotnet, or an apphost).
    #>
    [CmdletBinding()]
    param([string]$WriterPath)
    if (-not $WriterPath) { $WriterPath = Get-RequiredEnvironmentPath -Name 'SQLITEREPLICA_WRITER' }
    $WriterPath = ConvertTo-FullPath $WriterPath
    if ($WriterPath.EndsWith('.dll', [StringComparison]::OrdinalIgnoreCase)) {
        [pscustomobject]@{ FilePath = Get-DotnetHostPath; PrefixArguments = [string[]]@($WriterPath) }
    }
    else {
        [pscustomobject]@{ FilePath = $WriterPath; PrefixArguments = [string[]]@() }
    }
}

function Invoke-Writer {
    <#
    .SYNOPSIS
        Runs the test writer to completion and returns its stdout lines; throws (quoting stderr) on a non-zero exit.
    .EXAMPLE
        Invoke-Writer write --db $db --count 100 --rows-per-tx 10
    #>
    [CmdletBinding(PositionalBinding = $false)]
    [OutputType([string])]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromRemainingArguments)][object[]]$ArgumentList,
        [double]$TimeoutSeconds = 300,
        [hashtable]$Environment
    )
    $writer = Get-WriterCommand
    $result = Invoke-NativeProcess -FilePath $writer.FilePath -ArgumentList (@($writer.PrefixArguments) + @($ArgumentList)) -TimeoutSeconds $TimeoutSeconds -Environment $Environment
    if ($result.ExitCode -ne 0) {
        throw "The test writer failed with exit code $($result.ExitCode): $($result.CommandLine)$([Environment]::NewLine)$($result.StdErr)$($result.StdOut)"
    }
    $result.Lines
}

function Get-WriterLastCommittedId {
    <#
    .SYNOPSIS
        Returns the id of the last 'committed <id>' line in a writer's stdout file (or from a Start-Writer object), or $null if none yet.
    #>
    [CmdletBinding(DefaultParameterSetName = 'Writer')]
    [OutputType([long])]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Writer', Position = 0, ValueFromPipeline)][object]$Writer,
        [Parameter(Mandatory, ParameterSetName = 'Path')][string]$Path
    )
    process {
        if ($Writer) { $Path = $Writer.LogPath }
        $found = $script:CommittedPattern.Matches((Read-SharedText -Path $Path))
        if ($found.Count -eq 0) { return $null }
        [long]$found[$found.Count - 1].Groups[1].Value
    }
}

function Start-Writer {
    <#
    .SYNOPSIS
        Starts the test writer in the background (own process group); stdout goes to a file.
    .DESCRIPTION
        Returns a TestProcess (LogPath = the stdout file; stderr goes to
        ErrorLogPath) with the method GetLastCommittedId(), which parses the
        last 'committed <id>' line written so far ($null before the first).
    .EXAMPLE
        $w = Start-Writer write --db $db --count 100000 --interval-ms 5 -StdoutPath "$TestDrive/writer.out"
        Wait-Until { $w.GetLastCommittedId() -ge 50 } -Message 'writer reached id 50'
        $w | Send-ProcessGroupSignal -Signal KILL
    #>
    [CmdletBinding(PositionalBinding = $false)]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromRemainingArguments)][object[]]$ArgumentList,
        [Alias('LogPath')][string]$StdoutPath,
        [hashtable]$Environment
    )
    $writer = Get-WriterCommand
    if (-not $StdoutPath) { $StdoutPath = Join-Path (New-TestDirectory -Prefix 'writer') 'writer.out' }
    $StdoutPath = ConvertTo-FullPath $StdoutPath
    $process = Start-TestProcess -FilePath $writer.FilePath -ArgumentList (@($writer.PrefixArguments) + @($ArgumentList)) -LogPath $StdoutPath -ErrorLogPath "$StdoutPath.err" -Environment $Environment -Name 'writer'
    $process | Add-Member -MemberType ScriptMethod -Name GetLastCommittedId -Value { Get-WriterLastCommittedId -Path $this.LogPath }
    $process | Add-Member -MemberType AliasProperty -Name StdoutPath -Value LogPath -PassThru
}

function Wait-WriterProgress {
    <#
    .SYNOPSIS
        Waits until a background writer has committed at least -MinimumId; fails early if it exited.
    #>
    [CmdletBinding()]
    [OutputType([long])]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipeline)][object]$Writer,
        [Parameter(Mandatory)][long]$MinimumId,
        [double]$TimeoutSeconds = 60
    )
    process {
        Wait-Until -TimeoutSeconds $TimeoutSeconds -Message "writer pid $($Writer.Pid) to commit id $MinimumId" -Condition {
            $id = $Writer.GetLastCommittedId()
            if ($null -ne $id -and $id -ge $MinimumId) { return $id }
            if ($Writer.Process.HasExited) {
                $id = $Writer.GetLastCommittedId()
                if ($null -ne $id -and $id -ge $MinimumId) { return $id }
                throw "the writer exited with code $($Writer.Process.ExitCode) at id $id; stderr: $(Read-SharedText -Path $Writer.ErrorLogPath)"
            }
        }
    }
}

function Get-DbDump {
    <#
    .SYNOPSIS
        Returns the writer's dump of a database as an object: integrity, digest, tables, maxId.
    .EXAMPLE
        (Get-DbDump -Path $restored).digest | Should -Be (Get-DbDump -Path $source).digest
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)][Alias('FullName')][string]$Path,
        [double]$TimeoutSeconds = 120
    )
    process {
        $full = ConvertTo-FullPath $Path
        $lines = Invoke-Writer -ArgumentList @('dump', '--db', $full) -TimeoutSeconds $TimeoutSeconds
        $json = @($lines | Where-Object { $_.TrimStart().StartsWith('{') }) | Select-Object -Last 1
        if (-not $json) { throw "The writer's dump of '$full' printed no JSON line: $($lines -join ' | ')" }
        $json | ConvertFrom-Json
    }
}

function New-TestDatabase {
    <#
    .SYNOPSIS
        Creates a WAL-mode test database with the writer ('init', then 'write --count Rows') and returns Path and LastId.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Path,
        [int]$PageSize,
        [int]$Rows = 0,
        [int]$RowsPerTransaction
    )
    $full = ConvertTo-FullPath $Path
    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($full))
    $init = @('init', '--db', $full)
    if ($PageSize) { $init += @('--page-size', $PageSize) }
    $null = Invoke-Writer -ArgumentList $init
    $lastId = $null
    if ($Rows -gt 0) {
        $write = @('write', '--db', $full, '--count', $Rows)
        if ($RowsPerTransaction) { $write += @('--rows-per-tx', $RowsPerTransaction) }
        $lines = Invoke-Writer -ArgumentList $write
        $lastId = Get-WriterLastCommittedIdFromLines -Lines $lines
    }
    [pscustomobject]@{ PSTypeName = 'SqliteReplica.Tests.TestDatabase'; Path = $full; LastId = $lastId }
}

function Get-WriterLastCommittedIdFromLines {
    param([string[]]$Lines)
    $last = $null
    foreach ($line in $Lines) {
        $m = $script:CommittedPattern.Match($line)
        if ($m.Success) { $last = [long]$m.Groups[1].Value }
    }
    $last
}

#endregion

#region Litestream

function Invoke-Litestream {
    <#
    .SYNOPSIS
        Runs the real litestream binary ($env:SQLITEREPLICA_LITESTREAM) to completion; returns ExitCode, Output (stdout and stderr merged, in order) and Lines.
    .EXAMPLE
        $r = Invoke-Litestream restore -o $out "file://$replica"
        $r.ExitCode | Should -Be 0 -Because $r.Output
    #>
    [CmdletBinding(PositionalBinding = $false)]
    param(
        [Parameter(Position = 0, ValueFromRemainingArguments)][object[]]$ArgumentList = @(),
        [double]$TimeoutSeconds = 120,
        [hashtable]$Environment,
        [string]$WorkingDirectory,
        [string]$LitestreamPath,
        [switch]$ExpectSuccess
    )
    if (-not $LitestreamPath) { $LitestreamPath = Get-RequiredEnvironmentPath -Name 'SQLITEREPLICA_LITESTREAM' }
    $result = Invoke-NativeProcess -FilePath (ConvertTo-FullPath $LitestreamPath) -ArgumentList $ArgumentList -TimeoutSeconds $TimeoutSeconds -Environment $Environment -WorkingDirectory $WorkingDirectory -MergeStandardError
    if ($ExpectSuccess -and $result.ExitCode -ne 0) {
        throw "litestream failed with exit code $($result.ExitCode): $($result.CommandLine)$([Environment]::NewLine)$($result.StdOut)"
    }
    [pscustomobject]@{
        PSTypeName  = 'SqliteReplica.Tests.LitestreamResult'
        ExitCode    = $result.ExitCode
        Output      = $result.StdOut
        Lines       = $result.Lines
        CommandLine = $result.CommandLine
    }
}

function New-LitestreamConfig {
    <#
    .SYNOPSIS
        Writes a Litestream v0.3 YAML config for one database and one replica (a directory, or an S3 bucket) and returns its path.
    .DESCRIPTION
        Paths are made absolute. Litestream expands $VAR over the whole file, so
        paths must not contain '$'. Durations are Go durations ('100ms', '1s',
        '1m'). Optional settings are written only when given. For S3, pass the
        credentials to litestream as LITESTREAM_ACCESS_KEY_ID and
        LITESTREAM_SECRET_ACCESS_KEY in its environment.
    #>
    [CmdletBinding(DefaultParameterSetName = 'File')]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)][string]$DbPath,
        [Parameter(Mandatory, ParameterSetName = 'File')][string]$ReplicaDir,
        [Parameter(Mandatory, ParameterSetName = 'S3')][string]$S3Bucket,
        [Parameter(ParameterSetName = 'S3')][string]$S3Path = '',
        [Parameter(ParameterSetName = 'S3')][string]$S3Endpoint,
        [Parameter(ParameterSetName = 'S3')][string]$S3Region = 'us-east-1',
        [Parameter(Mandatory)][string]$Path,
        [string]$ReplicaName,
        [string]$MonitorInterval = '100ms',
        [string]$SyncInterval = '1s',
        [string]$CheckpointInterval,
        [int]$MinCheckpointPageCount,
        [int]$MaxCheckpointPageCount = -1,
        [string]$SnapshotInterval,
        [string]$Retention,
        [string]$RetentionCheckInterval,
        [string]$ValidationInterval,
        [ValidateSet('debug', 'info', 'warn', 'error')][string]$LogLevel = 'info'
    )
    $db = ConvertTo-FullPath $DbPath
    $yaml = [System.Text.StringBuilder]::new()
    $null = $yaml.AppendLine('logging:').AppendLine("  level: $LogLevel").AppendLine('dbs:')
    $null = $yaml.AppendLine("  - path: $(ConvertTo-YamlString $db)")
    if ($MonitorInterval) { $null = $yaml.AppendLine("    monitor-interval: $MonitorInterval") }
    if ($CheckpointInterval) { $null = $yaml.AppendLine("    checkpoint-interval: $CheckpointInterval") }
    if ($MinCheckpointPageCount) { $null = $yaml.AppendLine("    min-checkpoint-page-count: $MinCheckpointPageCount") }
    if ($MaxCheckpointPageCount -ge 0) { $null = $yaml.AppendLine("    max-checkpoint-page-count: $MaxCheckpointPageCount") }
    $null = $yaml.AppendLine('    replicas:')
    if ($PSCmdlet.ParameterSetName -eq 'File') {
        $null = $yaml.AppendLine('      - type: file')
        $null = $yaml.AppendLine("        path: $(ConvertTo-YamlString (ConvertTo-FullPath $ReplicaDir))")
    }
    else {
        $null = $yaml.AppendLine('      - type: s3')
        $null = $yaml.AppendLine("        bucket: $(ConvertTo-YamlString $S3Bucket)")
        $null = $yaml.AppendLine("        path: $(ConvertTo-YamlString $S3Path)")
        $null = $yaml.AppendLine("        region: $(ConvertTo-YamlString $S3Region)")
        if ($S3Endpoint) {
            $null = $yaml.AppendLine("        endpoint: $(ConvertTo-YamlString $S3Endpoint)")
            $null = $yaml.AppendLine('        force-path-style: true')
        }
    }
    if ($ReplicaName) { $null = $yaml.AppendLine("        name: $(ConvertTo-YamlString $ReplicaName)") }
    if ($SyncInterval) { $null = $yaml.AppendLine("        sync-interval: $SyncInterval") }
    if ($SnapshotInterval) { $null = $yaml.AppendLine("        snapshot-interval: $SnapshotInterval") }
    if ($Retention) { $null = $yaml.AppendLine("        retention: $Retention") }
    if ($RetentionCheckInterval) { $null = $yaml.AppendLine("        retention-check-interval: $RetentionCheckInterval") }
    if ($ValidationInterval) { $null = $yaml.AppendLine("        validation-interval: $ValidationInterval") }
    $full = ConvertTo-FullPath $Path
    $null = [System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($full))
    [System.IO.File]::WriteAllText($full, $yaml.ToString())
    $full
}

function Start-LitestreamReplicate {
    <#
    .SYNOPSIS
        Runs 'litestream replicate' (the real binary) in the background on one database with a generated config.
    .DESCRIPTION
        Writes litestream.yml into -WorkDirectory (default: a new temp
        directory) with short intervals (monitor 100ms, sync 1s unless given),
        starts litestream in its own process group with its log in
        litestream.log, and waits until it logs 'replicating to' (skip with
        -NoWait). Returns a TestProcess with ConfigPath, DbPath and ReplicaDir
        added. Stop it with Stop-LitestreamReplicate (SIGTERM: final sync, exit 0).
    .EXAMPLE
        $ls = Start-LitestreamReplicate -DbPath $db -ReplicaDir "$TestDrive/replica" -WorkDirectory "$TestDrive/ls"
        Wait-LogLine -Path $ls.LogPath -Pattern 'wal segment written' -Process $ls
        $ls | Stop-LitestreamReplicate | Should -Be 0
    #>
    [CmdletBinding(DefaultParameterSetName = 'File')]
    param(
        [Parameter(Mandatory)][string]$DbPath,
        [Parameter(Mandatory, ParameterSetName = 'File')][string]$ReplicaDir,
        [Parameter(Mandatory, ParameterSetName = 'S3')][string]$S3Bucket,
        [Parameter(ParameterSetName = 'S3')][string]$S3Path = '',
        [Parameter(ParameterSetName = 'S3')][string]$S3Endpoint,
        [Parameter(ParameterSetName = 'S3')][string]$S3Region = 'us-east-1',
        [string]$WorkDirectory,
        [string]$MonitorInterval = '100ms',
        [string]$SyncInterval = '1s',
        [string]$CheckpointInterval,
        [int]$MinCheckpointPageCount,
        [int]$MaxCheckpointPageCount = -1,
        [string]$SnapshotInterval,
        [string]$Retention,
        [string]$RetentionCheckInterval,
        [string]$ValidationInterval,
        [ValidateSet('debug', 'info', 'warn', 'error')][string]$LogLevel = 'info',
        [hashtable]$Environment,
        [string]$LitestreamPath,
        [double]$TimeoutSeconds = 30,
        [switch]$NoWait
    )
    if (-not $LitestreamPath) { $LitestreamPath = Get-RequiredEnvironmentPath -Name 'SQLITEREPLICA_LITESTREAM' }
    $WorkDirectory = if ($WorkDirectory) { ConvertTo-FullPath $WorkDirectory } else { New-TestDirectory -Prefix 'litestream' }
    $null = [System.IO.Directory]::CreateDirectory($WorkDirectory)
    $configParameters = @{}
    foreach ($key in $PSBoundParameters.Keys) {
        if ($key -notin 'WorkDirectory', 'Environment', 'LitestreamPath', 'TimeoutSeconds', 'NoWait', 'Verbose', 'Debug', 'ErrorAction', 'WarningAction', 'InformationAction', 'ErrorVariable', 'WarningVariable', 'InformationVariable', 'OutVariable', 'OutBuffer', 'PipelineVariable', 'ProgressAction') {
            $configParameters[$key] = $PSBoundParameters[$key]
        }
    }
    foreach ($default in 'MonitorInterval', 'SyncInterval', 'LogLevel') {
        if (-not $configParameters.ContainsKey($default)) { $configParameters[$default] = Get-Variable -Name $default -ValueOnly }
    }
    $config = New-LitestreamConfig @configParameters -Path (Join-Path $WorkDirectory 'litestream.yml')
    $process = Start-TestProcess -FilePath (ConvertTo-FullPath $LitestreamPath) -ArgumentList @('replicate', '-config', $config) -LogPath (Join-Path $WorkDirectory 'litestream.log') -Environment $Environment -WorkingDirectory $WorkDirectory -Name 'litestream'
    $process | Add-Member -NotePropertyMembers ([ordered]@{
            ConfigPath = $config
            DbPath     = ConvertTo-FullPath $DbPath
            ReplicaDir = if ($ReplicaDir) { ConvertTo-FullPath $ReplicaDir } else { $null }
        })
    if (-not $NoWait) {
        try {
            $null = Wait-LogLine -Path $process.LogPath -Pattern 'msg="replicating to"' -TimeoutSeconds $TimeoutSeconds -Process $process
        }
        catch {
            $null = $process | Stop-TestProcess -Signal KILL -TimeoutSeconds 5
            throw
        }
    }
    $process
}

function Stop-LitestreamReplicate {
    <#
    .SYNOPSIS
        Stops a background litestream with SIGTERM (its final sync runs) and returns its exit code; throws if it does not exit in time.
    #>
    [CmdletBinding()]
    [OutputType([int])]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipeline)][object]$InputObject,
        [ValidateSet('TERM', 'INT', 'KILL')][string]$Signal = 'TERM',
        [double]$TimeoutSeconds = 30
    )
    process {
        $InputObject | Stop-TestProcess -Signal $Signal -TimeoutSeconds $TimeoutSeconds -NoKill
    }
}

#endregion

#region tmpfs mounts

function New-TmpfsMount {
    <#
    .SYNOPSIS
        Mounts a fresh tmpfs (a small one fills up; -ReadOnly refuses every write, even root's) and returns its path.
    .DESCRIPTION
        'mount -t tmpfs -o size=<Size>' (with -ReadOnly 'ro,size=<Size>', Size
        then defaulting to 1m) on -Path (created if missing) or on a new temp
        directory. Needs root. Unmount with Remove-TmpfsMount. To make a mount
        read-only later, or writable again, use Set-TmpfsMountMode.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [string]$Size,
        [switch]$ReadOnly,
        [string]$Path
    )
    if (-not $Size) { $Size = if ($ReadOnly) { '1m' } else { '64k' } }
    if ($Size -notmatch '^\d+[kmg%]?$') { throw "Invalid tmpfs size '$Size' (examples: 64k, 1m)." }
    $mountPoint = if ($Path) { ConvertTo-FullPath $Path } else { New-TestDirectory -Prefix 'tmpfs' }
    $null = [System.IO.Directory]::CreateDirectory($mountPoint)
    $options = if ($ReadOnly) { "ro,size=$Size" } else { "size=$Size" }
    $result = Invoke-NativeProcess -FilePath (Get-NativeCommandPath -Name 'mount') -ArgumentList @('-t', 'tmpfs', '-o', $options, 'tmpfs', $mountPoint) -TimeoutSeconds 30 -MergeStandardError
    if ($result.ExitCode -ne 0) {
        throw "mount -t tmpfs -o $options on $mountPoint failed (exit $($result.ExitCode)): $($result.StdOut.Trim())"
    }
    $script:TrackedMounts.Add($mountPoint)
    $mountPoint
}

function Set-TmpfsMountMode {
    <#
    .SYNOPSIS
        Remounts a mount read-only or read-write in place (files stay; open files keep working for reads).
    .DESCRIPTION
        'mount -o remount,ro|rw'. Remounting read-only fails while a process
        holds a file there open for writing (EBUSY).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Path,
        [Parameter(Mandatory)][ValidateSet('ReadOnly', 'ReadWrite')][string]$Mode
    )
    $mountPoint = ConvertTo-FullPath $Path
    $flag = if ($Mode -eq 'ReadOnly') { 'ro' } else { 'rw' }
    $result = Invoke-NativeProcess -FilePath (Get-NativeCommandPath -Name 'mount') -ArgumentList @('-o', "remount,$flag", $mountPoint) -TimeoutSeconds 30 -MergeStandardError
    if ($result.ExitCode -ne 0) {
        throw "mount -o remount,$flag $mountPoint failed (exit $($result.ExitCode)): $($result.StdOut.Trim())"
    }
}

function Remove-TmpfsMount {
    <#
    .SYNOPSIS
        Unmounts a tmpfs made by New-TmpfsMount and deletes its directory; an already unmounted path is fine.
    .DESCRIPTION
        Retries while busy, then detaches lazily ('umount -l'). -KeepDirectory
        leaves the (now empty) mount point. -All removes every mount made by
        this module.
    #>
    [CmdletBinding(DefaultParameterSetName = 'One')]
    param(
        [Parameter(Mandatory, ParameterSetName = 'One', Position = 0, ValueFromPipeline)][string]$Path,
        [Parameter(Mandatory, ParameterSetName = 'All')][switch]$All,
        [switch]$KeepDirectory
    )
    process {
        $targets = if ($All) { @($script:TrackedMounts) } else { @(ConvertTo-FullPath $Path) }
        $umount = Get-NativeCommandPath -Name 'umount'
        foreach ($mountPoint in $targets) {
            $attempt = 0
            while (Test-MountPoint -Path $mountPoint) {
                $attempt++
                $arguments = if ($attempt -le 10) { @($mountPoint) } else { @('-l', $mountPoint) }
                $result = Invoke-NativeProcess -FilePath $umount -ArgumentList $arguments -TimeoutSeconds 30 -MergeStandardError
                if ($result.ExitCode -ne 0) {
                    if ($attempt -gt 10) { throw "umount -l $mountPoint failed (exit $($result.ExitCode)): $($result.StdOut.Trim())" }
                    Start-Sleep -Milliseconds 200
                }
            }
            if ($attempt -gt 10) { Write-Warning "$mountPoint was busy; it was detached lazily." }
            $null = $script:TrackedMounts.Remove($mountPoint)
            if (-not $KeepDirectory -and (Test-Path -LiteralPath $mountPoint -PathType Container)) {
                Remove-Item -LiteralPath $mountPoint -Recurse -Force
            }
        }
    }
}

function New-FillerFile {
    <#
    .SYNOPSIS
        Fills a directory's file system with a file of zeros until no space is left (or only -LeaveBytes remain); returns the file.
    .DESCRIPTION
        Delete the returned file to free the space again. Meant for tmpfs
        mounts from New-TmpfsMount (never fill a real disk).
    #>
    [CmdletBinding()]
    [OutputType([System.IO.FileInfo])]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Directory,
        [long]$LeaveBytes = 0,
        [string]$Name = 'filler.bin'
    )
    $dir = ConvertTo-FullPath $Directory
    $file = Join-Path $dir $Name
    $limit = [long]::MaxValue
    if ($LeaveBytes -gt 0) {
        $limit = [System.IO.DriveInfo]::new($dir).AvailableFreeSpace - $LeaveBytes
    }
    $buffer = [byte[]]::new(4096)
    $written = 0L
    # bufferSize 0: unbuffered, so the failing write is the one that hits ENOSPC.
    $stream = [System.IO.FileStream]::new($file, 'Create', 'Write', 'None', 0)
    try {
        while ($written -lt $limit) {
            $n = [int][Math]::Min([long]$buffer.Length, $limit - $written)
            try {
                $stream.Write($buffer, 0, $n)
            }
            catch [System.IO.IOException] {
                break
            }
            $written += $n
        }
    }
    finally {
        try { $stream.Dispose() } catch [System.IO.IOException] { }
    }
    Get-Item -LiteralPath $file
}

#endregion

#region Replica layout

function Get-ReplicaFile {
    <#
    .SYNOPSIS
        Lists the snapshots and WAL segments of a Litestream v0.3 file replica, with generation, index and offset parsed from the names.
    .DESCRIPTION
        Reads <ReplicaDir>/generations/<16 hex>/snapshots/<8 hex>.snapshot.lz4
        and .../wal/<8 hex>_<8+ hex>.wal.lz4. Names that v0.3.13 would not
        list (temporary files, upper-case hex, other entries) are left out.
        Output is sorted by generation, index, kind (snapshot first) and offset;
        Index and Offset are integers. Alias: Get-ReplicaFiles.
    .EXAMPLE
        Get-ReplicaFile $replica | Where-Object Kind -eq 'wal' | Select-Object Generation, Index, Offset
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][string]$ReplicaDir,
        [string]$Generation,
        [ValidateSet('snapshot', 'wal')][string]$Kind
    )
    $root = Join-Path (ConvertTo-FullPath $ReplicaDir) 'generations'
    if (-not (Test-Path -LiteralPath $root -PathType Container)) { return }
    $files = foreach ($genDir in [System.IO.Directory]::GetDirectories($root)) {
        $gen = [System.IO.Path]::GetFileName($genDir)
        if ($gen -cnotmatch '^[0-9a-f]{16}$') { continue }
        if ($Generation -and $gen -ne $Generation) { continue }
        $snapshots = Join-Path $genDir 'snapshots'
        if ((-not $Kind -or $Kind -eq 'snapshot') -and [System.IO.Directory]::Exists($snapshots)) {
            foreach ($info in [System.IO.DirectoryInfo]::new($snapshots).GetFiles()) {
                if ($info.Name -cmatch '^([0-9a-f]{8})\.snapshot\.lz4$') {
                    [pscustomobject]@{
                        PSTypeName = 'SqliteReplica.Tests.ReplicaFile'
                        Generation = $gen
                        Kind       = 'snapshot'
                        Index      = [Convert]::ToInt32($Matches[1], 16)
                        Offset     = 0L
                        Name       = $info.Name
                        Path       = $info.FullName
                        Length     = $info.Length
                        LastWriteTimeUtc = $info.LastWriteTimeUtc
                    }
                }
            }
        }
        $wal = Join-Path $genDir 'wal'
        if ((-not $Kind -or $Kind -eq 'wal') -and [System.IO.Directory]::Exists($wal)) {
            foreach ($info in [System.IO.DirectoryInfo]::new($wal).GetFiles()) {
                if ($info.Name -cmatch '^([0-9a-f]{8})_([0-9a-f]{8,16})\.wal\.lz4$') {
                    [pscustomobject]@{
                        PSTypeName = 'SqliteReplica.Tests.ReplicaFile'
                        Generation = $gen
                        Kind       = 'wal'
                        Index      = [Convert]::ToInt32($Matches[1], 16)
                        Offset     = [Convert]::ToInt64($Matches[2], 16)
                        Name       = $info.Name
                        Path       = $info.FullName
                        Length     = $info.Length
                        LastWriteTimeUtc = $info.LastWriteTimeUtc
                    }
                }
            }
        }
    }
    $files | Sort-Object -Property Generation, Index, @{ Expression = { if ($_.Kind -eq 'snapshot') { 0 } else { 1 } } }, Offset
}

#endregion

#region Module lifetime

Set-Alias -Name Stop-ProcessGroup -Value Send-ProcessGroupSignal
Set-Alias -Name Get-ReplicaFiles -Value Get-ReplicaFile

# Exit hook: engine event actions run in their own dynamic module and do not
# see -MessageData for PowerShell.Exiting, so the tracked lists reach the action
# through an AppDomain slot. The marker comment identifies our subscription.
$script:ExitHookSlot = 'SqliteReplica.TestHelpers.Cleanup'
function Unregister-ExitHook {
    Get-EventSubscriber -Force -ErrorAction SilentlyContinue |
        Where-Object { $_.SourceIdentifier -eq 'PowerShell.Exiting' -and $_.Action -and $_.Action.Command -match 'SqliteReplica\.TestHelpers\.Cleanup' } |
        ForEach-Object { Unregister-Event -SubscriptionId $_.SubscriptionId -Force }
}
Unregister-ExitHook
[System.AppDomain]::CurrentDomain.SetData($script:ExitHookSlot, @{
        Processes = $script:TrackedProcesses
        Mounts    = $script:TrackedMounts
        Cleanup   = ${function:Invoke-TestResourceCleanup}
    })
$null = Register-EngineEvent -SourceIdentifier PowerShell.Exiting -SupportEvent -Action {
    $state = [System.AppDomain]::CurrentDomain.GetData('SqliteReplica.TestHelpers.Cleanup')
    if ($state) { & $state.Cleanup -Processes $state.Processes -Mounts $state.Mounts }
}
$ExecutionContext.SessionState.Module.OnRemove = {
    Invoke-TestResourceCleanup -Processes $script:TrackedProcesses -Mounts $script:TrackedMounts
    Unregister-ExitHook
    [System.AppDomain]::CurrentDomain.SetData($script:ExitHookSlot, $null)
}

Export-ModuleMember -Alias Stop-ProcessGroup, Get-ReplicaFiles -Function @(
    'Wait-Until'
    'Wait-LogLine'
    'Get-LogTail'
    'New-TestDirectory'
    'Invoke-NativeProcess'
    'Start-TestProcess'
    'Get-ProcessGroupMember'
    'Send-ProcessGroupSignal'
    'Wait-ProcessGroupExit'
    'Wait-TestProcess'
    'Stop-TestProcess'
    'Get-PwshCommand'
    'Start-PwshProcess'
    'Start-ReplicatorProcess'
    'Get-WriterCommand'
    'Invoke-Writer'
    'Start-Writer'
    'Get-WriterLastCommittedId'
    'Wait-WriterProgress'
    'Get-DbDump'
    'New-TestDatabase'
    'Invoke-Litestream'
    'New-LitestreamConfig'
    'Start-LitestreamReplicate'
    'Stop-LitestreamReplicate'
    'New-TmpfsMount'
    'Set-TmpfsMountMode'
    'Remove-TmpfsMount'
    'New-FillerFile'
    'Get-ReplicaFile'
)
