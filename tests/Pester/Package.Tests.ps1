#Requires -Version 7.6
# The module as users get it: a .nupkg installed with PSResourceGet from a folder repository,
# imported by name, and used for a real file-replica round trip. Everything runs in a fresh pwsh
# whose HOME and XDG folders are scratch folders in $TestDrive (PSResourceGet's repository store
# and the user module folder live there) and whose PSModulePath holds only that user module
# folder and $PSHOME/Modules, so neither the build output nor the real user folders are used.
#
# The package is $env:SQLITEREPLICA_PACKAGE (the .nupkg, or the folder `build.ps1 Package`
# writes: out/package) when set; otherwise the child packs the built module
# ($env:SQLITEREPLICA_MODULE) with Compress-PSResource, exactly as `build.ps1 Package` does.
# Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE and SQLITEREPLICA_WRITER.

Describe 'The module package' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

        $modulePath = $env:SQLITEREPLICA_MODULE
        if ([string]::IsNullOrWhiteSpace($modulePath) -or -not (Test-Path -LiteralPath $modulePath)) {
            throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$modulePath'); run the tests through build.ps1 Test."
        }
        $script:ModuleVersion = (Import-PowerShellDataFile -LiteralPath $modulePath).ModuleVersion
        $script:RepositoryName = 'SqliteReplicaTestFolder'

        # The folder repository: the given package, or an empty folder the child packs into.
        $repositoryDir = Join-Path $TestDrive 'repository'
        $null = New-Item -ItemType Directory -Path $repositoryDir
        $givenPackage = $env:SQLITEREPLICA_PACKAGE
        if (-not [string]::IsNullOrWhiteSpace($givenPackage)) {
            $nupkg = if (Test-Path -LiteralPath $givenPackage -PathType Container) {
                @(Get-ChildItem -LiteralPath $givenPackage -Filter 'SqliteReplica.*.nupkg')
            }
            else { @(Get-Item -LiteralPath $givenPackage) }
            if ($nupkg.Count -ne 1) {
                throw "SQLITEREPLICA_PACKAGE ('$givenPackage') must name one SqliteReplica .nupkg or a folder holding exactly one."
            }
            Copy-Item -LiteralPath $nupkg[0].FullName -Destination $repositoryDir
        }

        # The child's own HOME: PSResourceGet keeps its repository store in the user's data folder
        # and falls back to the current directory when that folder does not exist, so create it.
        $script:ScratchHome = Join-Path $TestDrive 'home'
        $dataHome = Join-Path $ScratchHome '.local/share'
        foreach ($dir in $dataHome, (Join-Path $ScratchHome '.config'), (Join-Path $ScratchHome '.cache')) {
            $null = New-Item -ItemType Directory -Path $dir -Force
        }
        $script:UserModules = Join-Path $dataHome 'powershell/Modules'

        # A live database with rows, and where its replica and the restored copy go.
        $script:SourceDb = (New-TestDatabase -Path (Join-Path $TestDrive 'live/app.db') -Rows 50).Path
        $replicaDir = Join-Path $TestDrive 'replica'
        $script:RestoredDb = Join-Path $TestDrive 'restored/app.db'
        $writer = Get-WriterCommand

        $reportPath = Join-Path $TestDrive 'package-report.json'
        $parametersPath = Join-Path $TestDrive 'package-parameters.json'
        [ordered]@{
            BuiltModuleDir = Split-Path -Parent $modulePath
            PackIfEmpty    = [string]::IsNullOrWhiteSpace($givenPackage)
            RepositoryDir  = $repositoryDir
            RepositoryName = $RepositoryName
            UserModules    = $UserModules
            Database       = $SourceDb
            ReplicaDir     = $replicaDir
            RestoredDb     = $RestoredDb
            WriterPath     = $writer.FilePath
            WriterPrefix   = @($writer.PrefixArguments)
            ReportPath     = $reportPath
        } | ConvertTo-Json | Set-Content -LiteralPath $parametersPath -Encoding utf8NoBOM

        # Every step is recorded, so one failing step does not hide the others' results.
        $childScript = Join-Path $TestDrive 'package-child.ps1'
        Set-Content -LiteralPath $childScript -Encoding utf8NoBOM -Value @'
param([string] $ParametersPath)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$p = Get-Content -Raw -LiteralPath $ParametersPath | ConvertFrom-Json
$report = [ordered]@{
    Steps = [ordered]@{}; PackageFiles = @(); Found = $null; InstalledBase = $null; ListedBases = @(); ModuleBase = $null
    ModuleVersion = $null; EngineLocation = $null; NativeSqlite = @(); Summaries = @(); Restore = $null; RepositoryAfter = $null
}
function Step([string] $Name, [scriptblock] $Action) {
    try { & $Action; $report.Steps[$Name] = 'ok' }
    catch { $report.Steps[$Name] = "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" }
}

Import-Module -Name Microsoft.PowerShell.PSResourceGet
if ($p.PackIfEmpty) {
    Step 'Pack' { $null = Compress-PSResource -Path $p.BuiltModuleDir -DestinationPath $p.RepositoryDir }
}
$report.PackageFiles = @(Get-ChildItem -LiteralPath $p.RepositoryDir -Filter '*.nupkg' | ForEach-Object Name)
Step 'Register' { Register-PSResourceRepository -Name $p.RepositoryName -Uri $p.RepositoryDir -Trusted }
Step 'Find' { $report.Found = [string] (Find-PSResource -Name SqliteReplica -Repository $p.RepositoryName).Version }
Step 'Install' {
    Install-PSResource -Name SqliteReplica -Repository $p.RepositoryName -TrustRepository -Scope CurrentUser -Quiet
    $report.InstalledBase = (Get-InstalledPSResource -Name SqliteReplica -Scope CurrentUser).InstalledLocation
}

# Only the scratch user module folder and the modules that ship with pwsh.
$env:PSModulePath = $p.UserModules + [IO.Path]::PathSeparator + (Join-Path $PSHOME 'Modules')
$report.ListedBases = @(Get-Module -ListAvailable -Name SqliteReplica | ForEach-Object ModuleBase)
Step 'Import' {
    $module = Import-Module -Name SqliteReplica -PassThru
    $report.ModuleBase = $module.ModuleBase
    $report.ModuleVersion = $module.Version.ToString()
}

Step 'Replicate' {
    $job = Start-SqliteReplication -DatabasePath $p.Database -ReplicaPath $p.ReplicaDir -AsJob -SyncInterval '200ms' -MonitorInterval '100ms'
    try {
        & $p.WriterPath @($p.WriterPrefix) write --db $p.Database --count 200 --rows-per-tx 20 | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "the writer exited $LASTEXITCODE" }
    }
    finally {
        $job | Stop-Job
    }
    $output = @($job | Receive-Job)
    $report.Summaries = @($output | Where-Object { $_ -is [SqliteReplica.Output.ReplicationSummary] } | ForEach-Object {
            [ordered]@{ CaughtUp = $_.CaughtUp; LocalPosition = $_.LocalPosition; ConfirmedPosition = $_.ConfirmedPosition; LastError = $_.LastError }
        })
    $report.JobState = [string] $job.JobStateInfo.State
    $job | Remove-Job
}
Step 'Restore' {
    $result = Restore-SqliteReplica -ReplicaPath $p.ReplicaDir -OutputPath $p.RestoredDb
    $report.Restore = [ordered]@{ Position = $result.Position; Partial = $result.Partial }
}

# Where the engine and the native SQLite library were really loaded from.
$report.EngineLocation = @([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'SqliteReplica.Engine' } | ForEach-Object Location)
$report.NativeSqlite = @(Get-Content -LiteralPath /proc/self/maps | ForEach-Object { ($_ -split '\s+', 6)[5] } |
        Where-Object { $_ -like '*libe_sqlite3.so' } | Sort-Object -Unique)

Step 'Unregister' { Unregister-PSResourceRepository -Name $p.RepositoryName }
$report.RepositoryAfter = @(Get-PSResourceRepository | ForEach-Object Name)
$report | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $p.ReportPath -Encoding utf8NoBOM
'@

        $pwsh = Get-PwshCommand
        $environment = @{
            HOME            = $ScratchHome
            XDG_DATA_HOME   = $dataHome
            XDG_CONFIG_HOME = Join-Path $ScratchHome '.config'
            XDG_CACHE_HOME  = Join-Path $ScratchHome '.cache'
            PSModulePath    = $null
        }
        $child = Invoke-NativeProcess -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.PrefixArguments) + @(
                '-NoProfile', '-NonInteractive', '-File', $childScript, '-ParametersPath', $parametersPath)) `
            -Environment $environment -WorkingDirectory $TestDrive -TimeoutSeconds 300 -MergeStandardError
        if (-not (Test-Path -LiteralPath $reportPath)) {
            throw "The package child pwsh exited $($child.ExitCode) without a report. Output:`n$($child.StdOut)"
        }
        $script:Report = Get-Content -Raw -LiteralPath $reportPath | ConvertFrom-Json
        $script:ChildOutput = $child.StdOut
        $script:Installed = Join-Path $UserModules "SqliteReplica/$ModuleVersion"
    }

    AfterAll {
        Stop-TestProcess -All
    }

    It 'is one SqliteReplica .nupkg of the built version' {
        if ($Report.Steps.PSObject.Properties['Pack']) { $Report.Steps.Pack | Should -Be 'ok' -Because $ChildOutput }
        @($Report.PackageFiles) | Should -Be @("SqliteReplica.$ModuleVersion.nupkg")
    }

    It 'is found and installed from a folder repository into the isolated user module folder' {
        $Report.Steps.Register | Should -Be 'ok'
        $Report.Steps.Find | Should -Be 'ok'
        $Report.Found | Should -Be $ModuleVersion
        $Report.Steps.Install | Should -Be 'ok' -Because $ChildOutput
        $Report.InstalledBase | Should -Be $UserModules
        Join-Path $Installed 'SqliteReplica.psd1' | Should -Exist
    }

    It 'installs the engine, its packages and the native SQLite library under dependencies/' {
        foreach ($relative in 'SqliteReplica.dll', 'SqliteReplica.Format.ps1xml', 'dependencies/SqliteReplica.Engine.dll',
            'dependencies/SqliteReplica.Engine.deps.json', 'dependencies/Microsoft.Data.Sqlite.dll', 'dependencies/YamlDotNet.dll',
            'dependencies/AWSSDK.S3.dll', 'dependencies/runtimes/linux-x64/native/libe_sqlite3.so') {
            Join-Path $Installed $relative | Should -Exist
        }
    }

    It 'imports by name from the isolated module path, from the installed copy' {
        @($Report.ListedBases) | Should -Be @($Installed)
        $Report.Steps.Import | Should -Be 'ok' -Because $ChildOutput
        $Report.ModuleBase | Should -Be $Installed
        $Report.ModuleVersion | Should -Be $ModuleVersion
    }

    It 'replicates with Start-SqliteReplication -AsJob and catches up when the job is stopped' {
        $Report.Steps.Replicate | Should -Be 'ok' -Because $ChildOutput
        $Report.JobState | Should -Be 'Stopped'
        @($Report.Summaries).Count | Should -Be 1
        $Report.Summaries[0].CaughtUp | Should -BeTrue
        $Report.Summaries[0].LastError | Should -BeNullOrEmpty
    }

    It 'loads the engine and e_sqlite3 from the installed dependencies/ folder' {
        @($Report.EngineLocation) | Should -Be @(Join-Path $Installed 'dependencies/SqliteReplica.Engine.dll')
        @($Report.NativeSqlite) | Should -Be @(Join-Path $Installed 'dependencies/runtimes/linux-x64/native/libe_sqlite3.so')
    }

    It 'restores a copy equal to the source database' {
        $Report.Steps.Restore | Should -Be 'ok' -Because $ChildOutput
        $Report.Restore.Partial | Should -BeFalse
        $restored = Get-DbDump -Path $RestoredDb
        $source = Get-DbDump -Path $SourceDb
        $restored.integrity | Should -Be 'ok'
        $restored.maxId | Should -Be 250
        $restored.digest | Should -Be $source.digest
    }

    It 'unregisters its repository and leaves the real user''s repository store alone' {
        $Report.Steps.Unregister | Should -Be 'ok'
        @($Report.RepositoryAfter) | Should -Not -Contain $RepositoryName
        # The real store (if any) never saw the test repository.
        $realStore = Join-Path ([Environment]::GetFolderPath('LocalApplicationData', 'DoNotVerify')) 'PSResourceGet/PSResourceRepository.xml'
        if (Test-Path -LiteralPath $realStore) {
            Get-Content -Raw -LiteralPath $realStore | Should -Not -Match $RepositoryName
        }
        Join-Path $TestDrive 'PSResourceGet' | Should -Not -Exist
    }
}
