#Requires -Version 7.6
<#
.SYNOPSIS
    Builds, tests and demonstrates the SqliteReplica module.

.DESCRIPTION
    Run it with the pinned PowerShell from the repository's tool manifest:

        dotnet tool restore
        dotnet pwsh ./build.ps1 [Build|Test|Demo|Clean|Package|Chaos|Bench] [-Tag <tags>] [-ExcludeTag <tags>]

    Build  publishes the engine and its packages into out/SqliteReplica/dependencies,
           puts the cmdlet DLL (SqliteReplica.dll), the manifest (version stamped from
           Directory.Build.props) and the format file in out/SqliteReplica, and the test
           writer program in out/tools/SqliteWriter.
    Test   Build, then installs the pinned test dependencies (Pester and YamlDotNet 11
           from NuGet into .tools/, Litestream v0.3.13 through npm ci in tests/tools),
           runs the xunit suite and then every tests/Pester/*.Tests.ps1 in a child pwsh,
           and ends with one line "N passed, N failed, N skipped" (both suites added up).
           Exits 1 when anything failed or no test ran.
    Demo   Build, then runs examples/demo.ps1 in a child pwsh.
    Clean  removes out/ and .tools/.
    Bench  Build, then the side-by-side benchmark against Litestream v0.3.13
           (tests/Bench/Invoke-Bench.ps1) in a child pwsh: Quick mode unless
           SQLITEREPLICA_BENCH_MODE=Full (or Smoke). Rewrites docs/benchmarks.md (Smoke: only
           out/bench/benchmarks.md) and leaves raw JSON in out/bench/. Not part of Test.

.PARAMETER Tag
    Passed to Pester's Filter.Tag (Pester suite only).

.PARAMETER ExcludeTag
    Passed to Pester's Filter.ExcludeTag (Pester suite only).
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('Build', 'Test', 'Demo', 'Clean', 'Package', 'Chaos', 'Bench')]
    [string] $Task = 'Build',

    [string[]] $Tag = @(),

    [string[]] $ExcludeTag = @()
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
# Native exit codes are checked explicitly after every call (Assert-ExitCode).
$PSNativeCommandUseErrorActionPreference = $false

# --- Layout and pinned versions ------------------------------------------------------------

$RepoRoot = $PSScriptRoot
$Configuration = 'Release'

$OutDir = Join-Path $RepoRoot 'out'
$ModuleDir = Join-Path $OutDir 'SqliteReplica'
$DependencyDir = Join-Path $ModuleDir 'dependencies'
$ModuleManifest = Join-Path $ModuleDir 'SqliteReplica.psd1'
$WriterDir = Join-Path $OutDir 'tools/SqliteWriter'
$S3ProxyDir = Join-Path $OutDir 'tools/S3Proxy'
$ResultsDir = Join-Path $OutDir 'TestResults'

$ToolsDir = Join-Path $RepoRoot '.tools'
$NuGetToolsDir = Join-Path $ToolsDir 'nuget'
$NpmToolsDir = Join-Path $RepoRoot 'tests/tools'

$EngineProject = Join-Path $RepoRoot 'src/Engine/SqliteReplica.Engine.csproj'
$CmdletsProject = Join-Path $RepoRoot 'src/Cmdlets/SqliteReplica.Cmdlets.csproj'
$EngineTestsProject = Join-Path $RepoRoot 'tests/Engine.Tests/SqliteReplica.Engine.Tests.csproj'
$WriterProject = Join-Path $RepoRoot 'tests/SqliteWriter/SqliteWriter.csproj'
$S3ProxyProject = Join-Path $RepoRoot 'tests/S3Proxy/S3Proxy.csproj'
$PesterTestsDir = Join-Path $RepoRoot 'tests/Pester'
$DemoScript = Join-Path $RepoRoot 'examples/demo.ps1'

# Test-only packages restored from NuGet (not part of the product's package graph).
$PesterVersion = '5.7.1'
# An older YamlDotNet than the engine's, loaded first by the dependency-isolation test.
$OtherYamlDotNetVersion = '11.2.1'
# Older AWSSDK.Core and Microsoft.Data.Sqlite than the engine's (with the SQLitePCLRaw.core the
# latter references), loaded first by the coexistence test.
$OtherAwsSdkCoreVersion = '3.7.402'
$OtherSqliteVersion = '8.0.34'
$OtherSqlitePclVersion = '2.1.13'

# --- Helpers -------------------------------------------------------------------------------

function Write-Step {
    param([Parameter(Mandatory)][string] $Message)
    Write-Host "==> $Message"
}

function Assert-ExitCode {
    # Call right after a native command.
    param([Parameter(Mandatory)][string] $What)
    if ($LASTEXITCODE -ne 0) {
        throw "$What failed (exit code $LASTEXITCODE)."
    }
}

function Get-ProjectVersion {
    # The one version source: VersionPrefix in Directory.Build.props.
    [xml] $props = Get-Content -Raw -LiteralPath (Join-Path $RepoRoot 'Directory.Build.props')
    $node = $props.SelectSingleNode('/Project/PropertyGroup/VersionPrefix')
    if ($null -eq $node -or [string]::IsNullOrWhiteSpace($node.InnerText)) {
        throw 'Directory.Build.props has no VersionPrefix.'
    }
    $node.InnerText.Trim()
}

function Get-PwshCommand {
    # The pwsh running this script, to start child sessions with. Run as a .NET tool
    # ('dotnet pwsh'), the process is the dotnet host with pwsh.dll under $PSHOME;
    # starting '<dotnet> <PSHOME>/pwsh.dll' gives one process instead of the tool's three.
    $processPath = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($processPath) -eq 'dotnet') {
        return [pscustomobject]@{ FilePath = $processPath; Prefix = @(Join-Path $PSHOME 'pwsh.dll') }
    }
    [pscustomobject]@{ FilePath = $processPath; Prefix = @() }
}

function Invoke-ChildPwsh {
    # Runs a script file in a fresh 'pwsh -NoProfile -NonInteractive'; output goes to the host.
    param(
        [Parameter(Mandatory)][string] $ScriptPath,
        [string[]] $ArgumentList = @(),
        [hashtable] $Environment = @{}
    )
    $pwsh = Get-PwshCommand
    if ([Console]::IsOutputRedirected -and -not $env:NO_COLOR -and -not $Environment.ContainsKey('NO_COLOR')) {
        # Output to a log or CI: no ANSI colours from the child's formatting.
        $Environment = $Environment.Clone()
        $Environment['NO_COLOR'] = '1'
    }
    $saved = @{}
    foreach ($name in $Environment.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, [string] $Environment[$name])
    }
    try {
        & $pwsh.FilePath @($pwsh.Prefix) -NoProfile -NonInteractive -File $ScriptPath @ArgumentList | Out-Host
        $LASTEXITCODE
    }
    finally {
        foreach ($name in $saved.Keys) {
            [Environment]::SetEnvironmentVariable($name, $saved[$name])
        }
    }
}

# --- Build ---------------------------------------------------------------------------------

function Invoke-BuildTask {
    $version = Get-ProjectVersion
    Write-Step "Building SqliteReplica $version ($Configuration)"

    # A fresh module folder every time, so nothing stale survives in the layout.
    if (Test-Path -LiteralPath $ModuleDir) {
        Remove-Item -LiteralPath $ModuleDir -Recurse -Force
    }
    $null = New-Item -ItemType Directory -Path $DependencyDir -Force

    Build-Engine
    Build-Cmdlets
    Copy-ModuleFiles -Version $version
    Build-Help
    Assert-ModuleLayout
    Build-Writer

    Write-Step "Module ready: $ModuleManifest"
}

function Build-Engine {
    # No runtime identifier: packages keep their runtimes/<rid>/native/ folders, and the
    # engine's .deps.json tells EngineLoadContext where everything is.
    Write-Step 'Publishing the engine and its packages into dependencies/'
    dotnet publish $EngineProject -c $Configuration -o $DependencyDir --nologo | Out-Host
    Assert-ExitCode 'dotnet publish (engine)'

    # Precompile (ReadyToRun) the engine and its packages for the machine that builds: a
    # restore or a replicator's first minute then runs native code instead of waiting for
    # the JIT (measured on a 100 MB restore: about 0.1 s less inside the cmdlet). A
    # ReadyToRun DLL keeps its IL, so on another architecture it is simply JIT-compiled as
    # before; only the managed DLLs are replaced, so the portable native folders and the
    # .deps.json above stay as they are.
    $rid = [System.Runtime.InteropServices.RuntimeInformation]::RuntimeIdentifier
    $staging = Join-Path $OutDir 'readytorun'
    if (Test-Path -LiteralPath $staging) { Remove-Item -LiteralPath $staging -Recurse -Force }
    Write-Step "Precompiling the engine and its packages for $rid (ReadyToRun)"
    dotnet publish $EngineProject -c $Configuration -r $rid --self-contained false `
        -p:PublishReadyToRun=true -o $staging --nologo | Out-Host
    Assert-ExitCode 'dotnet publish (engine, ReadyToRun)'
    $replaced = 0
    foreach ($dll in Get-ChildItem -LiteralPath $staging -Filter '*.dll' -File) {
        $target = Join-Path $DependencyDir $dll.Name
        if (Test-Path -LiteralPath $target) {
            Copy-Item -LiteralPath $dll.FullName -Destination $target -Force
            $replaced++
        }
    }
    Remove-Item -LiteralPath $staging -Recurse -Force
    if ($replaced -eq 0) { throw 'No precompiled engine DLL matched the portable publish.' }
}

function Build-Cmdlets {
    Write-Step 'Building the cmdlet assembly'
    dotnet build $CmdletsProject -c $Configuration --nologo | Out-Host
    Assert-ExitCode 'dotnet build (cmdlets)'

    $targetPath = dotnet msbuild $CmdletsProject -nologo "-getProperty:TargetPath" "-p:Configuration=$Configuration"
    Assert-ExitCode 'dotnet msbuild -getProperty (cmdlets)'
    $targetPath = ([string] ($targetPath | Select-Object -Last 1)).Trim()
    if (-not (Test-Path -LiteralPath $targetPath)) {
        throw "The cmdlet assembly was not found at '$targetPath'."
    }

    # Only the root DLL (and its symbols) goes to the module's top level: the engine and
    # every package stay in dependencies/, where the private load context finds them.
    Copy-Item -LiteralPath $targetPath -Destination $ModuleDir
    $pdb = [IO.Path]::ChangeExtension($targetPath, '.pdb')
    if (Test-Path -LiteralPath $pdb) {
        Copy-Item -LiteralPath $pdb -Destination $ModuleDir
    }
}

function Copy-ModuleFiles {
    param([Parameter(Mandatory)][string] $Version)
    $moduleSource = Join-Path $RepoRoot 'module'
    Copy-Item -Path (Join-Path $moduleSource '*.psd1'), (Join-Path $moduleSource '*.ps1xml') -Destination $ModuleDir

    # Stamp the manifest with the one version source.
    $text = Get-Content -Raw -LiteralPath $ModuleManifest
    $pattern = "(?m)^(\s*ModuleVersion\s*=\s*)'[^']*'"
    if ($text -notmatch $pattern) {
        throw 'module/SqliteReplica.psd1 has no ModuleVersion line to stamp.'
    }
    $text = [regex]::Replace($text, $pattern, "`${1}'$Version'")
    Set-Content -LiteralPath $ModuleManifest -Value $text -NoNewline -Encoding utf8NoBOM

    $data = Import-PowerShellDataFile -LiteralPath $ModuleManifest
    if ($data.ModuleVersion -ne $Version) {
        throw "Stamping the manifest failed: ModuleVersion is '$($data.ModuleVersion)', expected '$Version'."
    }
}

function Build-Help {
    # docs/cmdlets/<Verb-Noun>.md -> en-US/SqliteReplica.dll-Help.xml (MAML, what Get-Help reads for
    # a binary module). The converter imports the built module, so it runs in a child pwsh.
    Write-Step 'Compiling docs/cmdlets into en-US/SqliteReplica.dll-Help.xml'
    $helpFile = Join-Path $ModuleDir 'en-US/SqliteReplica.dll-Help.xml'
    $exitCode = Invoke-ChildPwsh -ScriptPath (Join-Path $RepoRoot 'build/HelpConverter.ps1') -ArgumentList @(
        '-ModuleManifest', $ModuleManifest
        '-MarkdownPath', (Join-Path $RepoRoot 'docs/cmdlets')
        '-OutputPath', $helpFile
    )
    if ($exitCode -ne 0 -or -not (Test-Path -LiteralPath $helpFile)) {
        throw "Compiling the cmdlet help failed (exit code $exitCode)."
    }
}

function Assert-ModuleLayout {
    $required = @(
        'SqliteReplica.dll'
        'SqliteReplica.psd1'
        'dependencies/SqliteReplica.Engine.dll'
        'dependencies/SqliteReplica.Engine.deps.json'
    )
    foreach ($relative in $required) {
        if (-not (Test-Path -LiteralPath (Join-Path $ModuleDir $relative))) {
            throw "Module layout is wrong: '$relative' is missing from $ModuleDir."
        }
    }

    $allowedTopLevel = @('SqliteReplica.dll', 'SqliteReplica.pdb', 'SqliteReplica.psd1', 'SqliteReplica.Format.ps1xml', 'dependencies', 'en-US')
    $unexpected = @(Get-ChildItem -LiteralPath $ModuleDir -Force | Where-Object Name -NotIn $allowedTopLevel)
    if ($unexpected.Count -gt 0) {
        throw "Module layout is wrong: unexpected top-level entries $($unexpected.Name -join ', ') (the engine and its packages belong in dependencies/)."
    }
}

function Build-Writer {
    Write-Step 'Publishing the test writer into out/tools/SqliteWriter'
    dotnet publish $WriterProject -c $Configuration -o $WriterDir --nologo | Out-Host
    Assert-ExitCode 'dotnet publish (SqliteWriter)'
    if (Test-Path -LiteralPath $S3ProxyProject) {
        Write-Step 'Publishing the S3 test proxy into out/tools/S3Proxy'
        dotnet publish $S3ProxyProject -c $Configuration -o $S3ProxyDir --nologo | Out-Host
        Assert-ExitCode 'dotnet publish (S3Proxy)'
    }
}

# --- Test dependencies ---------------------------------------------------------------------

function Install-NuGetTestTools {
    # Pester and the "other" YamlDotNet, AWSSDK.Core and Microsoft.Data.Sqlite come from NuGet
    # through a throwaway project that only downloads them (PackageDownload), into
    # .tools/nuget/<id>/<version>/.
    $pester = Join-Path $NuGetToolsDir "pester/$PesterVersion/tools/Pester.psd1"
    $yamlRoot = Join-Path $NuGetToolsDir "yamldotnet/$OtherYamlDotNetVersion"
    $awsRoot = Join-Path $NuGetToolsDir "awssdk.core/$OtherAwsSdkCoreVersion"
    $sqliteRoot = Join-Path $NuGetToolsDir "microsoft.data.sqlite.core/$OtherSqliteVersion"
    $sqlitePclRoot = Join-Path $NuGetToolsDir "sqlitepclraw.core/$OtherSqlitePclVersion"

    if (@($pester, $yamlRoot, $awsRoot, $sqliteRoot, $sqlitePclRoot | Where-Object { -not (Test-Path -LiteralPath $_) }).Count -gt 0) {
        Write-Step "Restoring Pester $PesterVersion and the other versions of YamlDotNet, AWSSDK.Core and Microsoft.Data.Sqlite into .tools/"
        $projectDir = Join-Path $ToolsDir 'restore'
        $null = New-Item -ItemType Directory -Path $projectDir -Force
        # Empty Directory.* files stop MSBuild from importing the repository's own
        # (central package management does not apply to this project).
        foreach ($name in 'Directory.Build.props', 'Directory.Build.targets', 'Directory.Packages.props') {
            Set-Content -LiteralPath (Join-Path $projectDir $name) -Value '<Project />' -Encoding utf8NoBOM
        }
        $project = @"
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="Pester" Version="[$PesterVersion]" />
    <PackageDownload Include="YamlDotNet" Version="[$OtherYamlDotNetVersion]" />
    <PackageDownload Include="AWSSDK.Core" Version="[$OtherAwsSdkCoreVersion]" />
    <PackageDownload Include="Microsoft.Data.Sqlite.Core" Version="[$OtherSqliteVersion]" />
    <PackageDownload Include="SQLitePCLRaw.core" Version="[$OtherSqlitePclVersion]" />
  </ItemGroup>
</Project>
"@
        $projectFile = Join-Path $projectDir 'TestTools.csproj'
        Set-Content -LiteralPath $projectFile -Value $project -Encoding utf8NoBOM
        dotnet restore $projectFile --packages $NuGetToolsDir --nologo | Out-Host
        Assert-ExitCode 'dotnet restore (test tools)'
    }

    if (-not (Test-Path -LiteralPath $pester)) {
        throw "Pester was not restored to '$pester'."
    }

    # The most specific library build that pwsh 7.6 (.NET 10) can load.
    $findLibrary = {
        param([string] $PackageRoot, [string] $FileName)
        foreach ($framework in 'net8.0', 'net7.0', 'net6.0', 'net5.0', 'netstandard2.1', 'netstandard2.0') {
            $candidate = Join-Path $PackageRoot "lib/$framework/$FileName"
            if (Test-Path -LiteralPath $candidate) {
                return $candidate
            }
        }
        throw "No loadable $FileName found under '$PackageRoot/lib'."
    }

    [pscustomobject]@{
        PesterManifest  = $pester
        OtherYamlDotNet = & $findLibrary $yamlRoot 'YamlDotNet.dll'
        OtherAwsSdkCore = & $findLibrary $awsRoot 'AWSSDK.Core.dll'
        OtherSqlite     = & $findLibrary $sqliteRoot 'Microsoft.Data.Sqlite.dll'
        OtherSqlitePcl  = & $findLibrary $sqlitePclRoot 'SQLitePCLRaw.core.dll'
    }
}

function Install-Litestream {
    # The real Litestream v0.3.13 binary, pinned by tests/tools/package-lock.json.
    $binary = Join-Path $NpmToolsDir 'node_modules/@flydotio/litestream-linux-x64/litestream'
    $lock = Join-Path $NpmToolsDir 'package-lock.json'
    $installed = Join-Path $NpmToolsDir 'node_modules/.package-lock.json'

    $upToDate = (Test-Path -LiteralPath $binary) -and (Test-Path -LiteralPath $installed) -and
        ([IO.File]::GetLastWriteTimeUtc($installed) -ge [IO.File]::GetLastWriteTimeUtc($lock))
    if (-not $upToDate) {
        Write-Step 'Installing Litestream v0.3.13 (npm ci in tests/tools)'
        Push-Location -LiteralPath $NpmToolsDir
        try {
            npm ci --no-audit --no-fund | Out-Host
            Assert-ExitCode 'npm ci (tests/tools)'
        }
        finally {
            Pop-Location
        }
    }

    if (-not (Test-Path -LiteralPath $binary)) {
        throw "The litestream binary was not installed at '$binary'."
    }
    $binary
}

# --- Test ----------------------------------------------------------------------------------

function New-SuiteResult {
    param([string] $Name, [int] $Passed = 0, [int] $Failed = 0, [int] $Skipped = 0, [string] $Problem = '',
        [string[]] $FailedTests = @())
    [pscustomobject]@{ Name = $Name; Passed = $Passed; Failed = $Failed; Skipped = $Skipped; Problem = $Problem
        FailedTests = @($FailedTests) }
}

function Get-FirstLine([string] $Text, [int] $Max = 300) {
    # The first non-empty line of a failure message, shortened: enough to find it in the log.
    $line = @("$Text" -split "`r?`n" | Where-Object { $_.Trim() } | Select-Object -First 1)
    $line = if ($line.Count -gt 0) { $line[0].Trim() } else { '' }
    if ($line.Length -gt $Max) { $line = $line.Substring(0, $Max) + '...' }
    $line
}

function Invoke-XunitSuite {
    Write-Step 'Running the xunit suite (tests/Engine.Tests)'
    $trxName = 'engine-tests.trx'
    $trx = Join-Path $ResultsDir $trxName
    Remove-Item -LiteralPath $trx -Force -ErrorAction Ignore

    dotnet test $EngineTestsProject -c $Configuration --nologo `
        --results-directory $ResultsDir `
        --logger "trx;LogFileName=$trxName" `
        --logger 'console;verbosity=normal' | Out-Host
    $exitCode = $LASTEXITCODE   # 1 also means "some test failed": judged with the TRX below

    if (-not (Test-Path -LiteralPath $trx)) {
        return New-SuiteResult -Name 'xunit' -Failed 1 -Problem "dotnet test exited $exitCode without writing $trxName (build error or crash)."
    }

    # One UnitTestResult per test case (per data row of a theory), by outcome: Passed;
    # Failed, Error, Timeout, Aborted = failed; NotExecuted (xunit's Skip), Inconclusive = skipped.
    # (The TRX summary counters are not used: vstest leaves notExecuted at 0 for skipped tests.)
    [xml] $doc = Get-Content -Raw -LiteralPath $trx
    $failedOutcomes = 'Failed', 'Error', 'Timeout', 'Aborted'
    $unitResults = @($doc.SelectNodes("//*[local-name()='Results']/*[local-name()='UnitTestResult']"))
    $outcomes = @($unitResults | ForEach-Object { $_.GetAttribute('outcome') })
    $failedTests = @($unitResults | Where-Object { $_.GetAttribute('outcome') -in $failedOutcomes } | ForEach-Object {
            $message = $_.SelectSingleNode(".//*[local-name()='ErrorInfo']/*[local-name()='Message']")
            '{0}: {1}' -f $_.GetAttribute('testName'), (Get-FirstLine $(if ($message) { $message.InnerText }))
        })
    $result = New-SuiteResult -Name 'xunit' -FailedTests $failedTests `
        -Passed @($outcomes | Where-Object { $_ -eq 'Passed' }).Count `
        -Failed @($outcomes | Where-Object { $_ -in $failedOutcomes }).Count `
        -Skipped @($outcomes | Where-Object { $_ -notin @('Passed') + $failedOutcomes }).Count

    if ($exitCode -ne 0 -and $result.Failed -eq 0) {
        # The run failed without a failing test (test host crash, aborted run): count it.
        $result.Failed = 1
        $result.Problem = "dotnet test exited $exitCode although no test failed (see the output above)."
    }
    $result
}

function Invoke-PesterSuite {
    param(
        [Parameter(Mandatory)][string] $PesterManifest,
        [Parameter(Mandatory)][hashtable] $Environment
    )
    Write-Step 'Running the Pester suite (tests/Pester) in a child pwsh'
    $countsFile = Join-Path $ResultsDir 'pester-counts.json'
    $resultXml = Join-Path $ResultsDir 'pester.xml'
    $runner = Join-Path $ResultsDir 'run-pester.ps1'
    Remove-Item -LiteralPath $countsFile, $resultXml -Force -ErrorAction Ignore

    # The child imports Pester and the module itself, so no DLL is ever loaded in this
    # (the build's) session. Arrays travel as comma-separated strings through -File.
    Set-Content -LiteralPath $runner -Encoding utf8NoBOM -Value @'
param(
    [Parameter(Mandatory)][string] $PesterManifest,
    [Parameter(Mandatory)][string] $TestPath,
    [Parameter(Mandatory)][string] $ResultXml,
    [Parameter(Mandatory)][string] $CountsFile,
    [string] $Tag = '',
    [string] $ExcludeTag = '',
    [string] $RenderMode = 'Auto'
)
$ErrorActionPreference = 'Stop'
Import-Module -Name $PesterManifest -Force

$configuration = New-PesterConfiguration
$configuration.Run.Path = $TestPath
$configuration.Run.PassThru = $true
$configuration.Run.Exit = $false
$configuration.Output.Verbosity = 'Detailed'
$configuration.Output.RenderMode = $RenderMode
$configuration.TestResult.Enabled = $true
$configuration.TestResult.OutputFormat = 'JUnitXml'
$configuration.TestResult.OutputPath = $ResultXml
if ($Tag) { $configuration.Filter.Tag = @($Tag -split ',' | Where-Object { $_ }) }
if ($ExcludeTag) { $configuration.Filter.ExcludeTag = @($ExcludeTag -split ',' | Where-Object { $_ }) }

$result = Invoke-Pester -Configuration $configuration

function Test-HasFailedTest($Block) {
    foreach ($test in $Block.Tests) { if ($test.Result -eq 'Failed') { return $true } }
    foreach ($child in $Block.Blocks) { if (Test-HasFailedTest $child) { return $true } }
    $false
}

# A failed BeforeAll already fails every test of its block; a failed AfterAll, or a block
# whose failure failed no test, counts once. A test file that cannot run at all (it has no
# tests to fail) counts once too.
$failedBlocksWithoutFailedTests = @($result.FailedBlocks | Where-Object { -not (Test-HasFailedTest $_) }).Count

# Names and first message lines of what failed, for the run's closing summary.
function Get-FailureLine($Item, [string] $Name) {
    # A test failed by its block's BeforeAll carries no error of its own: quote the block's.
    $source = $Item
    while ($source -and -not @($source.ErrorRecord).Count -and $source.PSObject.Properties['Block']) { $source = $source.Block }
    while ($source -and -not @($source.ErrorRecord).Count -and $source.PSObject.Properties['Parent']) { $source = $source.Parent }
    $message = @($source.ErrorRecord | ForEach-Object { "$($_.Exception.Message)" } | Where-Object { $_.Trim() } | Select-Object -First 1)
    $first = if ($message.Count -gt 0) { ($message[0] -split "`r?`n" | Where-Object { $_.Trim() } | Select-Object -First 1) } else { '' }
    if ("$first".Length -gt 300) { $first = "$first".Substring(0, 300) + '...' }
    '{0}: {1}' -f $Name, "$first".Trim()
}
$failedNames = @(
    @($result.Failed) | Where-Object { $_ } | ForEach-Object { Get-FailureLine $_ $_.ExpandedPath }
    @($result.FailedBlocks) | Where-Object { $_ -and -not (Test-HasFailedTest $_) } | ForEach-Object { Get-FailureLine $_ "$($_.Path -join '.') (block)" }
    @($result.FailedContainers) | Where-Object { $_ } | ForEach-Object { Get-FailureLine $_ "$($_.Item) (file)" }
)
[ordered]@{
    FailedNames      = $failedNames
    Passed           = $result.PassedCount
    Failed           = $result.FailedCount + $failedBlocksWithoutFailedTests + $result.FailedContainersCount
    Skipped          = $result.SkippedCount + $result.InconclusiveCount
    NotRun           = $result.NotRunCount
    TestsFailed      = $result.FailedCount
    BlocksFailed     = $result.FailedBlocksCount
    FilesFailed      = $result.FailedContainersCount
} | ConvertTo-Json | Set-Content -LiteralPath $CountsFile -Encoding utf8NoBOM
exit 0
'@

    $arguments = @(
        '-PesterManifest', $PesterManifest
        '-TestPath', $PesterTestsDir
        '-ResultXml', $resultXml
        '-CountsFile', $countsFile
    )
    # The child's output is piped through this session: colours only when this one is on a terminal.
    $arguments += @('-RenderMode', $(if ([Console]::IsOutputRedirected -or $env:NO_COLOR) { 'Plaintext' } else { 'Ansi' }))
    if ($Tag.Count -gt 0) { $arguments += @('-Tag', ($Tag -join ',')) }
    if ($ExcludeTag.Count -gt 0) { $arguments += @('-ExcludeTag', ($ExcludeTag -join ',')) }

    $exitCode = Invoke-ChildPwsh -ScriptPath $runner -ArgumentList $arguments -Environment $Environment
    if (-not (Test-Path -LiteralPath $countsFile)) {
        return New-SuiteResult -Name 'Pester' -Failed 1 -Problem "the Pester run exited $exitCode without reporting its counts."
    }

    $counts = Get-Content -Raw -LiteralPath $countsFile | ConvertFrom-Json
    New-SuiteResult -Name 'Pester' -Passed $counts.Passed -Failed $counts.Failed -Skipped $counts.Skipped `
        -FailedTests @($counts.FailedNames | Where-Object { $_ })
}

function Invoke-TestTask {
    $results = [System.Collections.Generic.List[object]]::new()
    try {
        Invoke-BuildTask
        $nuget = Install-NuGetTestTools
        $litestream = Install-Litestream
        if (Test-Path -LiteralPath $ResultsDir) {
            Remove-Item -LiteralPath $ResultsDir -Recurse -Force
        }
        $null = New-Item -ItemType Directory -Path $ResultsDir -Force

        $results.Add((Invoke-XunitSuite))
        $results.Add((Invoke-PesterSuite -PesterManifest $nuget.PesterManifest -Environment @{
            SQLITEREPLICA_MODULE     = $ModuleManifest
            SQLITEREPLICA_LITESTREAM = $litestream
            SQLITEREPLICA_WRITER     = Join-Path $WriterDir 'SqliteWriter'
            SQLITEREPLICA_S3PROXY    = Join-Path $S3ProxyDir 'S3Proxy'
            SQLITEREPLICA_OTHER_YAML = $nuget.OtherYamlDotNet
            SQLITEREPLICA_OTHER_AWSSDK_CORE = $nuget.OtherAwsSdkCore
            SQLITEREPLICA_OTHER_SQLITE      = $nuget.OtherSqlite
            SQLITEREPLICA_OTHER_SQLITEPCL   = $nuget.OtherSqlitePcl
        }))
    }
    catch {
        # The build, a test dependency or a runner failed: report it and count it as one
        # failure, so the run still ends with its summary line.
        Write-Host "ERROR: $($_.Exception.Message)"
        $results.Add((New-SuiteResult -Name 'error' -Failed 1 -Problem "the test run stopped: $($_.Exception.Message)"))
    }

    $passed = ($results | Measure-Object -Property Passed -Sum).Sum
    $failed = ($results | Measure-Object -Property Failed -Sum).Sum
    $skipped = ($results | Measure-Object -Property Skipped -Sum).Sum

    Write-Host ''
    $failedTests = @($results | ForEach-Object { $suite = $_; $_.FailedTests | ForEach-Object { "  [$($suite.Name)] $_" } })
    if ($failedTests.Count -gt 0) {
        Write-Host 'Failed:'
        $failedTests | ForEach-Object { Write-Host $_ }
    }
    foreach ($suite in $results) {
        $line = '{0,-7} {1} passed, {2} failed, {3} skipped' -f $suite.Name, $suite.Passed, $suite.Failed, $suite.Skipped
        if ($suite.Problem) { $line += " ($($suite.Problem))" }
        Write-Host $line
    }
    if ($passed + $failed -eq 0) {
        Write-Host 'No test ran.'
    }
    # The one plain closing line that CI reads: keep it last.
    Write-Host ('{0} passed, {1} failed, {2} skipped' -f $passed, $failed, $skipped)

    if ($failed -gt 0 -or ($passed + $failed) -eq 0) {
        exit 1
    }
}

# --- Demo and Clean ------------------------------------------------------------------------

function Invoke-DemoTask {
    Invoke-BuildTask
    if (-not (Test-Path -LiteralPath $DemoScript)) {
        throw "The demo script '$DemoScript' is missing."
    }
    Write-Step 'Running examples/demo.ps1 in a child pwsh'
    $exitCode = Invoke-ChildPwsh -ScriptPath $DemoScript -Environment @{ SQLITEREPLICA_MODULE = $ModuleManifest }
    if ($exitCode -ne 0) {
        throw "examples/demo.ps1 failed (exit code $exitCode)."
    }
}

function Invoke-ChaosTask {
    # Build, then the reliability campaign (tests/Chaos/Invoke-Chaos.ps1) in a child pwsh: Quick
    # mode (a few minutes) unless SQLITEREPLICA_CHAOS_MODE=Long. It rewrites docs/reliability.md
    # and leaves raw results in out/chaos/; it fails when a goal is missed.
    Invoke-BuildTask
    $mode = if ($env:SQLITEREPLICA_CHAOS_MODE) { $env:SQLITEREPLICA_CHAOS_MODE } else { 'Quick' }
    Write-Step "Running the reliability campaign ($mode mode) in a child pwsh"
    $exitCode = Invoke-ChildPwsh -ScriptPath (Join-Path $RepoRoot 'tests/Chaos/Invoke-Chaos.ps1') -ArgumentList @('-Mode', $mode) -Environment @{
        SQLITEREPLICA_MODULE  = $ModuleManifest
        SQLITEREPLICA_WRITER  = Join-Path $WriterDir 'SqliteWriter'
        SQLITEREPLICA_S3PROXY = Join-Path $S3ProxyDir 'S3Proxy'
    }
    if ($exitCode -ne 0) {
        throw "The reliability campaign missed a goal or could not run (exit code $exitCode); see docs/reliability.md."
    }
}

function Invoke-BenchTask {
    # Build, then the benchmark (tests/Bench/Invoke-Bench.ps1) in a child pwsh, with the real
    # Litestream binary installed by npm. It measures and reports; it fails only when a case could
    # not run (a missed target is a finding in docs/benchmarks.md, not a build failure).
    Invoke-BuildTask
    $litestream = Install-Litestream
    $mode = if ($env:SQLITEREPLICA_BENCH_MODE) { $env:SQLITEREPLICA_BENCH_MODE } else { 'Quick' }
    Write-Step "Running the benchmark ($mode mode) in a child pwsh"
    $exitCode = Invoke-ChildPwsh -ScriptPath (Join-Path $RepoRoot 'tests/Bench/Invoke-Bench.ps1') -ArgumentList @('-Mode', $mode) -Environment @{
        SQLITEREPLICA_MODULE     = $ModuleManifest
        SQLITEREPLICA_WRITER     = Join-Path $WriterDir 'SqliteWriter'
        SQLITEREPLICA_S3PROXY    = Join-Path $S3ProxyDir 'S3Proxy'
        SQLITEREPLICA_LITESTREAM = $litestream
    }
    if ($exitCode -ne 0) {
        throw "The benchmark could not run every case (exit code $exitCode); see the output above and out/bench/."
    }
}

function Invoke-PackageTask {
    # Build, then pack out/SqliteReplica, dependencies/ included (the engine, its packages and
    # their native libraries), into out/package/SqliteReplica.<version>.nupkg with PSResourceGet's
    # Compress-PSResource: no repository is registered. Install it from that folder with
    # Register-PSResourceRepository -Uri out/package and Install-PSResource SqliteReplica.
    Invoke-BuildTask
    $packageDir = Join-Path $OutDir 'package'
    if (Test-Path -LiteralPath $packageDir) {
        Remove-Item -LiteralPath $packageDir -Recurse -Force
    }
    $null = New-Item -ItemType Directory -Path $packageDir -Force

    # PSResourceGet writes its repository store under the user's data folder, or into the current
    # directory (here: the repository) when that folder does not exist yet.
    $null = New-Item -ItemType Directory -Force -Path ([Environment]::GetFolderPath('LocalApplicationData', 'DoNotVerify'))
    Write-Step 'Packing out/SqliteReplica into out/package'
    Import-Module -Name Microsoft.PowerShell.PSResourceGet -ErrorAction Stop
    $package = @(Compress-PSResource -Path $ModuleDir -DestinationPath $packageDir -PassThru)
    if ($package.Count -ne 1 -or -not (Test-Path -LiteralPath $package[0].FullName)) {
        throw "Compress-PSResource did not produce one package in $packageDir."
    }

    # The package must hold everything the module loads at run time.
    $zip = [IO.Compression.ZipFile]::OpenRead($package[0].FullName)
    try {
        $entries = [Collections.Generic.HashSet[string]]::new([string[]] @($zip.Entries.FullName), [StringComparer]::Ordinal)
    }
    finally {
        $zip.Dispose()
    }
    foreach ($relative in 'SqliteReplica.psd1', 'SqliteReplica.dll', 'SqliteReplica.Format.ps1xml',
        'dependencies/SqliteReplica.Engine.dll', 'dependencies/SqliteReplica.Engine.deps.json',
        'dependencies/runtimes/linux-x64/native/libe_sqlite3.so') {
        if (-not $entries.Contains($relative)) {
            throw "The package $($package[0].Name) lacks '$relative'."
        }
    }
    Write-Step "Package ready: $($package[0].FullName)"
}

function Invoke-CleanTask {
    foreach ($path in $OutDir, $ToolsDir) {
        if (Test-Path -LiteralPath $path) {
            Write-Step "Removing $path"
            Remove-Item -LiteralPath $path -Recurse -Force
        }
    }
}

# --- Main ----------------------------------------------------------------------------------

Push-Location -LiteralPath $RepoRoot
try {
    switch ($Task) {
        'Build' { Invoke-BuildTask }
        'Test' { Invoke-TestTask }
        'Demo' { Invoke-DemoTask }
        'Clean' { Invoke-CleanTask }
        'Package' { Invoke-PackageTask }
        'Chaos' { Invoke-ChaosTask }
        'Bench' { Invoke-BenchTask }
    }
}
finally {
    Pop-Location
}
