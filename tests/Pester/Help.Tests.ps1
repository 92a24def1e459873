#Requires -Version 7.6
# The cmdlet help: docs/cmdlets/<Verb-Noun>.md, compiled by build/HelpConverter.ps1 into the built
# module's en-US/SqliteReplica.dll-Help.xml. Unit: what Get-Help -Full shows for every exported
# cmdlet, read in a fresh pwsh that imports the built module, measured against the cmdlet's own
# metadata, and the markdown's parameters against the cmdlet's. Integration: every example marked
# <!-- runnable --> runs, as written, in a scratch folder holding the sample files it refers to.
# Run through `build.ps1 Test`, which sets SQLITEREPLICA_MODULE and SQLITEREPLICA_WRITER.

BeforeDiscovery {
    # Test cases come from the manifest's explicit export list and from the markdown files (the
    # module itself is only loaded in child processes).
    $docsDir = Join-Path $PSScriptRoot '../../docs/cmdlets'
    $cmdletCases = @()
    if ($env:SQLITEREPLICA_MODULE -and (Test-Path -LiteralPath $env:SQLITEREPLICA_MODULE)) {
        $cmdletCases = @((Import-PowerShellDataFile -LiteralPath $env:SQLITEREPLICA_MODULE).CmdletsToExport |
            Sort-Object | ForEach-Object { @{ Name = $_ } })
    }

    # Examples: '### Example <n>: <title>' under '## EXAMPLES', an optional '<!-- runnable -->'
    # line, then one fenced code block (the shape build/HelpConverter.ps1 documents).
    $exampleCases = foreach ($file in Get-ChildItem -LiteralPath $docsDir -Filter '*.md' -File -ErrorAction Ignore | Sort-Object Name) {
        $section = ''
        $current = $null
        $inFence = $false
        $code = $null
        foreach ($line in [System.IO.File]::ReadAllLines($file.FullName)) {
            if ($line -match '^\s*```') {
                if (-not $inFence) { $code = [System.Collections.Generic.List[string]]::new() }
                elseif ($current -and $section -eq 'EXAMPLES' -and $null -eq $current.Code) { $current.Code = $code -join "`n" }
                $inFence = -not $inFence
                continue
            }
            if ($inFence) { $code.Add($line); continue }
            if ($line -match '^## (.+)$') { $section = $Matches[1].Trim(); continue }
            if ($section -eq 'EXAMPLES' -and $line -match '^### Example (\d+): (.+)$') {
                if ($current) { $current }
                $current = @{ Cmdlet = $file.BaseName; Number = [int] $Matches[1]; Title = $Matches[2].Trim(); Runnable = $false; Code = $null }
                continue
            }
            if ($current -and $section -eq 'EXAMPLES' -and $line.Trim() -eq '<!-- runnable -->') { $current.Runnable = $true }
        }
        if ($current) { $current }
    }
    $exampleCases = @($exampleCases)
    $runnableCases = @($exampleCases | Where-Object Runnable)
}

Describe 'Cmdlet help' -Tag 'Unit' {
    BeforeAll {
        Import-Module -Name (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

        $modulePath = $env:SQLITEREPLICA_MODULE
        if ([string]::IsNullOrWhiteSpace($modulePath) -or -not (Test-Path -LiteralPath $modulePath)) {
            throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$modulePath'); run the tests through build.ps1 Test."
        }
        $script:DocsDir = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../../docs/cmdlets'))

        # What Get-Help -Full and Get-Command say, from a fresh pwsh that imports the built module.
        $reportPath = Join-Path $TestDrive 'help-report.json'
        $probe = Join-Path $TestDrive 'help-probe.ps1'
        Set-Content -LiteralPath $probe -Encoding utf8NoBOM -Value @'
param([string] $ModulePath, [string] $ReportPath)
$ErrorActionPreference = 'Stop'
$module = Import-Module -Name $ModulePath -PassThru
$common = [System.Management.Automation.Cmdlet]::CommonParameters
function Get-Text($Items) { (@($Items | Where-Object { $_ } | ForEach-Object { "$($_.Text)" }) -join "`n").Trim() }
$report = foreach ($command in $module.ExportedCmdlets.Values) {
    $help = Get-Help -Name $command.Name -Full
    $parameters = [ordered]@{}
    foreach ($parameter in @($help.parameters.parameter | Where-Object { $_ })) {
        $parameters[$parameter.name] = Get-Text $parameter.description
    }
    [ordered]@{
        Name            = $command.Name
        Synopsis        = "$($help.Synopsis)".Trim()
        Description     = Get-Text $help.description
        Examples        = @(@($help.examples.example | Where-Object { $_ }) | ForEach-Object {
                [ordered]@{ Title = "$($_.title)"; Code = "$($_.code)"; Remarks = Get-Text $_.remarks }
            })
        Links           = @(@($help.relatedLinks.navigationLink | Where-Object { $_ }) | ForEach-Object { "$($_.linkText)" })
        HelpParameters  = $parameters
        ActualParameters = @($command.Parameters.Keys | Where-Object { $_ -notin $common })
    }
}
ConvertTo-Json -InputObject @($report) -Depth 6 | Set-Content -LiteralPath $ReportPath -Encoding utf8NoBOM
'@
        $pwsh = Get-PwshCommand
        $result = Invoke-NativeProcess -FilePath $pwsh.FilePath -TimeoutSeconds 120 -MergeStandardError -ArgumentList (
            @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $probe, '-ModulePath', $modulePath, '-ReportPath', $reportPath))
        if ($result.ExitCode -ne 0 -or -not (Test-Path -LiteralPath $reportPath)) {
            throw "Reading the help in a child pwsh failed (exit code $($result.ExitCode)): $($result.StdOut)"
        }
        $script:Report = @{}
        foreach ($entry in @(Get-Content -Raw -LiteralPath $reportPath | ConvertFrom-Json -AsHashtable)) {
            $script:Report[$entry.Name] = $entry
        }

        function Split-PascalCase {
            # 'ReplicaUrl' -> replica, url; 'IfDbNotExists' -> if, db, not, exists.
            param([string] $Name)
            @([regex]::Matches($Name, '[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+') | ForEach-Object { $_.Value.ToLowerInvariant() })
        }

        function Get-DescriptionProblem {
            # Why a parameter's description is not real information, or $null. Words that carry no
            # information here are ignored; what remains must say more than the parameter's name.
            param([string] $Name, [string] $Text)
            $filler = @('the', 'a', 'an', 'of', 'to', 'for', 'this', 'that', 'is', 'are', 'be', 'it', 'its', 'in', 'on',
                'with', 'and', 'or', 'by', 'parameter', 'value', 'values', 'specifies', 'specify', 'sets', 'set', 'gets',
                'name', 'names', 'given', 'use', 'used', 'uses', 'which', 'what', 'switch', 'option', 'flag')
            $normalized = ($Text.ToLowerInvariant() -replace '[^a-z0-9]+', ' ').Trim()
            if ($Text.Trim().Length -lt 40) {
                return "it is only $($Text.Trim().Length) characters long (at least 40 are required): '$Text'"
            }
            $words = @($normalized -split ' ' | Where-Object { $_ })
            $nameWords = @(Split-PascalCase $Name)
            $informative = @($words | Where-Object { $_ -notin $filler -and $_ -notin $nameWords } | Sort-Object -Unique)
            if ($informative.Count -lt 4) {
                return "it only repeats the name -$Name ('$Text')"
            }
            $null
        }

        function Get-MarkdownParameter {
            # The '### -Name' headings under '## PARAMETERS' of a cmdlet's markdown.
            param([string] $Path)
            $section = ''
            $inFence = $false
            foreach ($line in [System.IO.File]::ReadAllLines($Path)) {
                if ($line -match '^\s*```') { $inFence = -not $inFence; continue }
                if ($inFence) { continue }
                if ($line -match '^## (.+)$') { $section = $Matches[1].Trim(); continue }
                if ($section -eq 'PARAMETERS' -and $line -match '^### -(\S+)\s*$') { $Matches[1] }
            }
        }
    }

    It 'has a markdown file for every exported cmdlet' {
        $missing = @($Report.Keys | Where-Object { -not (Test-Path -LiteralPath (Join-Path $DocsDir "$_.md")) } | Sort-Object)
        $missing | Should -BeNullOrEmpty -Because 'each exported cmdlet needs docs/cmdlets/<Verb-Noun>.md'
    }

    It 'has no markdown file for a cmdlet the module does not export' {
        $stale = @(Get-ChildItem -LiteralPath $DocsDir -Filter '*.md' -File | Where-Object { -not $Report.ContainsKey($_.BaseName) } | ForEach-Object Name)
        $stale | Should -BeNullOrEmpty
    }

    It 'exports the cmdlets the manifest lists (the cases below cover them all)' {
        @($Report.Keys | Sort-Object) | Should -Be @((Import-PowerShellDataFile -LiteralPath $env:SQLITEREPLICA_MODULE).CmdletsToExport | Sort-Object)
    }

    Context '<Name>' -ForEach $cmdletCases {
        BeforeAll {
            $help = $Report[$Name]
            $markdownPath = Join-Path $DocsDir "$Name.md"
        }

        It 'has a synopsis of its own, not the generated syntax' {
            $help | Should -Not -BeNullOrEmpty
            $help.Synopsis | Should -Not -BeNullOrEmpty
            $help.Synopsis | Should -Not -Match "^$([regex]::Escape($Name))(\s|$)" -Because 'without help, Get-Help shows the syntax as the synopsis'
            $help.Synopsis | Should -Not -Match 'CommonParameters'
            $help.Synopsis.Length | Should -BeGreaterOrEqual 40
        }

        It 'has a description' {
            $help.Description.Length | Should -BeGreaterOrEqual 200 -Because "the description should explain what $Name does and how"
        }

        It 'has at least two examples, each with code and an explanation' {
            $help.Examples.Count | Should -BeGreaterOrEqual 2
            foreach ($example in $help.Examples) {
                $example.Code.Trim() | Should -Not -BeNullOrEmpty -Because "example '$($example.Title)' needs code"
                $example.Remarks.Length | Should -BeGreaterOrEqual 40 -Because "example '$($example.Title)' needs an explanation"
            }
        }

        It 'has examples that are valid PowerShell' {
            foreach ($example in $help.Examples) {
                $errors = $null
                $null = [System.Management.Automation.Language.Parser]::ParseInput($example.Code, [ref] $null, [ref] $errors)
                @($errors | ForEach-Object Message) | Should -BeNullOrEmpty -Because "example '$($example.Title)' should parse"
            }
        }

        It 'has related links' {
            $help.Links.Count | Should -BeGreaterOrEqual 1
        }

        It 'describes every parameter with real information' {
            $problems = foreach ($parameter in $help.ActualParameters) {
                $text = if ($help.HelpParameters.Contains($parameter)) { $help.HelpParameters[$parameter] } else { $null }
                if ([string]::IsNullOrWhiteSpace($text)) {
                    "-${parameter}: no description"
                    continue
                }
                $problem = Get-DescriptionProblem -Name $parameter -Text $text
                if ($problem) { "-${parameter}: $problem" }
            }
            @($problems) | Should -BeNullOrEmpty
        }

        It 'documents no parameter the cmdlet does not have' {
            $documented = @(Get-MarkdownParameter -Path $markdownPath)
            $documented.Count | Should -BeGreaterThan 0
            @($documented | Where-Object { $_ -cnotin $help.ActualParameters }) | Should -BeNullOrEmpty -Because "docs/cmdlets/$Name.md documents only $Name's parameters"
            @($documented | Group-Object | Where-Object Count -GT 1 | ForEach-Object Name) | Should -BeNullOrEmpty
        }

        It 'was built from the current markdown' {
            # The synopsis paragraph of the markdown is what the built help shows (a stale build fails).
            $lines = [System.IO.File]::ReadAllLines($markdownPath)
            $start = [array]::IndexOf($lines, '## SYNOPSIS')
            $start | Should -BeGreaterOrEqual 0
            $found = $false
            $paragraph = foreach ($line in $lines | Select-Object -Skip ($start + 1)) {
                if ($line -match '^## ') { break }
                if ([string]::IsNullOrWhiteSpace($line)) { if ($found) { break } else { continue } }
                $found = $true
                $line.Trim()
            }
            ($paragraph -join ' ') | Should -BeExactly $help.Synopsis
        }
    }

    It '<Cmdlet> example <Number> is marked runnable and uses only the sample folder' -ForEach $runnableCases {
        # Runnable examples run locally, against the sample files only (see the Integration tests).
        $Code | Should -Not -Match 's3://|https?://|(^|\s)/(etc|srv|var|pb|mnt)/'
        $Code | Should -Not -Match 'Import-Module' -Because 'the module is imported for the example'
    }
}

Describe 'Runnable help examples' -Tag 'Integration' {
    BeforeAll {
        Import-Module -Name (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        $modulePath = $env:SQLITEREPLICA_MODULE
        if ([string]::IsNullOrWhiteSpace($modulePath) -or -not (Test-Path -LiteralPath $modulePath)) {
            throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$modulePath'); run the tests through build.ps1 Test."
        }
        $script:Pwsh = Get-PwshCommand

        function Invoke-ExampleScript {
            # Runs a script in a fresh 'pwsh -NoProfile -NonInteractive -File' in $Directory, with
            # the built module imported and every error terminating; returns the native result.
            param([string] $Directory, [string] $Code, [string] $Name, [double] $TimeoutSeconds = 180)
            $script = Join-Path $TestDrive "$Name.ps1"
            $text = @(
                '$ErrorActionPreference = ''Stop'''
                '$ProgressPreference = ''SilentlyContinue'''
                '$PSStyle.OutputRendering = ''PlainText'''
                "Import-Module -Name '$($env:SQLITEREPLICA_MODULE.Replace("'", "''"))'"
                "Set-Location -LiteralPath '$($Directory.Replace("'", "''"))'"
                $Code
            ) -join [Environment]::NewLine
            Set-Content -LiteralPath $script -Value $text -Encoding utf8NoBOM
            Invoke-NativeProcess -FilePath $Pwsh.FilePath -WorkingDirectory $Directory -TimeoutSeconds $TimeoutSeconds -MergeStandardError `
                -ArgumentList (@($Pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $script))
        }

        # The sample folder every runnable example starts from (a fresh copy each):
        #   app.db             a live WAL-mode database written by the test writer
        #   .app.db-litestream its replicator's meta directory
        #   backups/app.db     a file replica of it: one generation, a snapshot and WAL segments,
        #                      made by a real Start-SqliteReplication -AsJob run ended by Stop-Job
        #   litestream.yml     app.db replicated to backups/app.db (absolute paths, written per copy)
        $script:Fixture = Join-Path $TestDrive 'fixture'
        $null = New-TestDatabase -Path (Join-Path $Fixture 'app.db') -Rows 50 -RowsPerTransaction 5
        $writer = Get-WriterCommand
        $writerCall = "& '$($writer.FilePath)' $(@($writer.PrefixArguments | ForEach-Object { "'$_'" }) -join ' ')"
        $setup = Invoke-ExampleScript -Directory $Fixture -Name 'fixture' -Code @"
`$job = Start-SqliteReplication -DatabasePath ./app.db -ReplicaPath ./backups/app.db -AsJob -SyncInterval 200ms -MonitorInterval 100ms
$writerCall write --db ./app.db --count 100 --rows-per-tx 10 | Out-Null
if (`$LASTEXITCODE -ne 0) { throw "the writer failed (`$LASTEXITCODE)" }
`$deadline = [DateTime]::UtcNow.AddSeconds(60)
while (-not (Get-SqliteReplicationStatus -DatabasePath ./app.db | Where-Object { `$_.Healthy -and `$_.BytesPending -eq 0 })) {
    if ([DateTime]::UtcNow -gt `$deadline) { throw 'the replica did not catch up within 60 s' }
    Start-Sleep -Milliseconds 200
}
`$job | Stop-Job
`$summary = @(`$job | Receive-Job)
`$job | Remove-Job
if (`$summary.Count -ne 1 -or -not `$summary[0].CaughtUp) { throw "the replica is not caught up: `$(`$summary | Out-String)" }
if (@(Get-ReplicaWalSegment -ReplicaPath ./backups/app.db).Count -eq 0) { throw 'the sample replica has no WAL segments' }
"@
        if ($setup.ExitCode -ne 0) {
            throw "Making the sample folder failed (exit code $($setup.ExitCode)):`n$($setup.StdOut)"
        }

        function New-ExampleDirectory {
            param([string] $Name)
            $directory = Join-Path $TestDrive $Name
            Copy-Item -LiteralPath $Fixture -Destination $directory -Recurse -Force
            $yaml = @(
                'dbs:'
                "  - path: `"$(Join-Path $directory 'app.db')`""
                '    replicas:'
                '      - type: file'
                "        path: `"$(Join-Path $directory 'backups/app.db')`""
            ) -join "`n"
            Set-Content -LiteralPath (Join-Path $directory 'litestream.yml') -Value $yaml -Encoding utf8NoBOM
            $directory
        }
    }

    AfterAll {
        Stop-TestProcess -All
    }

    It 'has a sample folder with the database, its meta directory and a replica' {
        foreach ($relative in 'app.db', '.app.db-litestream', 'backups/app.db/generations') {
            Join-Path $Fixture $relative | Should -Exist
        }
    }

    It '<Cmdlet> example <Number> runs: <Title>' -ForEach $runnableCases {
        $directory = New-ExampleDirectory -Name "example-$Cmdlet-$Number"
        Join-Path $directory '.app.db-litestream' | Should -Exist
        $result = Invoke-ExampleScript -Directory $directory -Code $Code -Name "run-$Cmdlet-$Number"
        $result.ExitCode | Should -Be 0 -Because "the example should run without an error:`n$Code`n--- output ---`n$($result.StdOut)"
    }
}
