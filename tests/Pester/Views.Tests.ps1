#Requires -Version 7.6
# The module's format file against its cmdlets' [OutputType]s: every non-primitive output type
# has a default view (its own, or for a job the view of System.Management.Automation.Job that
# Get-Job uses), and the default table of each fits a 120-column console without dropping a
# column. The sample objects come from real cmdlet runs against a small file replica (the
# writer program plays the application). Run through `build.ps1 Test`, which sets
# SQLITEREPLICA_MODULE and SQLITEREPLICA_WRITER.

BeforeDiscovery {
    # The test cases are the module's own [OutputType] declarations, so a new output type gets
    # checked without anyone editing this file.
    if ([string]::IsNullOrWhiteSpace($env:SQLITEREPLICA_MODULE) -or -not (Test-Path -LiteralPath $env:SQLITEREPLICA_MODULE)) {
        throw "SQLITEREPLICA_MODULE must name the built SqliteReplica.psd1 (got '$env:SQLITEREPLICA_MODULE'); run the tests through build.ps1 Test."
    }
    $module = Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -PassThru -ErrorAction Stop
    $outputTypes = foreach ($command in $module.ExportedCmdlets.Values) {
        foreach ($declared in $command.OutputType) {
            $type = $declared.Type
            if ($null -eq $type -or $type.IsPrimitive -or $type -in [string], [decimal], [datetime], [datetimeoffset], [timespan]) {
                continue
            }
            [pscustomobject]@{ TypeName = $type.FullName; Cmdlet = $command.Name }
        }
    }
    $typeCases = @($outputTypes | Group-Object TypeName | Sort-Object Name | ForEach-Object {
            @{ TypeName = $_.Name; Cmdlets = ($_.Group.Cmdlet | Sort-Object -Unique) -join ', ' }
        })
}

Describe 'Default views of the module''s output types' -Tag 'Unit' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop
        $script:ConsoleWidth = 120

        function Get-DefaultView {
            # The view PowerShell picks for an object of $TypeName: the first view registered for the
            # type itself, else for its nearest base type that has one. Returns TypeName (where the
            # view was found) and View, or $null.
            param([Parameter(Mandatory)][string]$TypeName)
            $module = Get-Module -Name SqliteReplica
            $type = $module.ImplementingAssembly.GetType($TypeName, $false)
            $names = if ($type) {
                for ($t = $type; $null -ne $t -and $t -ne [object]; $t = $t.BaseType) { $t.FullName }
            }
            else { @($TypeName) }
            foreach ($name in $names) {
                $data = @(Get-FormatData -TypeName $name -PowerShellVersion $PSVersionTable.PSVersion)
                if ($data.Count -gt 0 -and $data[0].FormatViewDefinition.Count -gt 0) {
                    return [pscustomobject]@{ TypeName = $name; View = $data[0].FormatViewDefinition[0] }
                }
            }
            $null
        }

        function Get-TableLabel {
            # The column headers a TableControl prints: the label, else the property name.
            param([Parameter(Mandatory)][System.Management.Automation.TableControl]$Table)
            $headers = @($Table.Headers)
            $columns = @($Table.Rows[0].Columns)
            for ($i = 0; $i -lt $headers.Count; $i++) {
                if ($headers[$i].Label) { $headers[$i].Label }
                else { $columns[$i].DisplayEntry.Value }
            }
        }

        # --- Sample objects from real runs against a small file replica -----------------------
        $db = (New-TestDatabase -Path (Join-Path $TestDrive 'live/app.db') -Rows 20).Path
        $replica = Join-Path $TestDrive 'replica'
        $script:Job = Start-SqliteReplication -DatabasePath $db -ReplicaPath $replica -AsJob -JobName 'views-sample' `
            -SyncInterval '200ms' -MonitorInterval '100ms' -ErrorAction Stop
        $null = Invoke-Writer write --db $db --count 60 --rows-per-tx 6
        $null = Wait-Until -TimeoutSeconds 60 -Message 'the replicator to report the database healthy' -Condition {
            @(Get-SqliteReplicationStatus -DatabasePath $db -ErrorAction SilentlyContinue | Where-Object Healthy).Count -gt 0
        }
        $status = @(Get-SqliteReplicationStatus -DatabasePath $db)
        $drill = @(Test-ReplicaRestore -ReplicaPath $replica -DatabasePath $db -MaxLag '30s')
        $null = $Job | Stop-Job
        $summaries = @($Job | Receive-Job -ErrorAction Stop | Where-Object { $_ -is [SqliteReplica.Output.ReplicationSummary] })
        $restored = @(Restore-SqliteReplica -ReplicaPath $replica -OutputPath (Join-Path $TestDrive 'restored/app.db') -ErrorAction Stop)

        $script:Samples = @{
            'SqliteReplica.Output.ReplicaGeneration'       = @(Get-ReplicaGeneration -ReplicaPath $replica -ErrorAction Stop)
            'SqliteReplica.Output.ReplicaSnapshot'         = @(Get-ReplicaSnapshot -ReplicaPath $replica -ErrorAction Stop)
            'SqliteReplica.Output.ReplicaWalSegment'       = @(Get-ReplicaWalSegment -ReplicaPath $replica -ErrorAction Stop)
            'SqliteReplica.Output.SqliteReplicationStatus' = $status
            'SqliteReplica.Output.SqliteRestoreResult'     = $restored
            'SqliteReplica.Output.ReplicationSummary'      = $summaries
            'SqliteReplica.Output.ReplicaDrillResult'      = $drill
            'SqliteReplica.Jobs.ReplicationJob'            = @($Job)
        }
    }

    AfterAll {
        if ($script:Job) {
            $script:Job | Stop-Job -ErrorAction Ignore
            $script:Job | Remove-Job -Force -ErrorAction Ignore
        }
        Stop-TestProcess -All
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    It 'produced sample objects of every output type from real runs' {
        foreach ($case in $typeCases) {
            $Samples[$case.TypeName].Count | Should -BeGreaterThan 0 -Because "the test needs a real $($case.TypeName) to render"
        }
        @($Samples['SqliteReplica.Output.ReplicaDrillResult'] | ForEach-Object Status) | Should -Be @('Passed')
    }

    It '<TypeName> (output of <Cmdlets>) has a default view' -ForEach $typeCases {
        $default = Get-DefaultView -TypeName $TypeName
        $default | Should -Not -BeNullOrEmpty -Because "module/SqliteReplica.Format.ps1xml should define a view for $TypeName"
        if ($TypeName -like 'SqliteReplica.*' -and $TypeName -notlike 'SqliteReplica.Jobs.*') {
            # The module's own output types need their own view; a job may use Get-Job's.
            $default.TypeName | Should -Be $TypeName
        }
    }

    It 'the default table of <TypeName> renders within 120 columns with every column shown' -ForEach $typeCases {
        $default = Get-DefaultView -TypeName $TypeName
        $default | Should -Not -BeNullOrEmpty
        $default.View.Control | Should -BeOfType [System.Management.Automation.TableControl]
        $samples = @($Samples[$TypeName])
        $samples.Count | Should -BeGreaterThan 0

        $text = $samples | Out-String -Width $ConsoleWidth
        $lines = @(($text -replace '\x1b\[[0-9;?]*[A-Za-z]', '') -split '\r?\n' | Where-Object { $_.Trim() })
        $tooLong = @($lines | Where-Object { $_.Length -gt $ConsoleWidth })
        $tooLong | Should -BeNullOrEmpty -Because "no line may exceed $ConsoleWidth characters:`n$text"

        # A table wider than the console drops its right-most columns without a word: every
        # header of the view must be on the header line.
        $labels = @(Get-TableLabel -Table $default.View.Control)
        $headerLine = $lines | Where-Object { $_ -match "^\s*$([regex]::Escape($labels[0]))\s" } | Select-Object -First 1
        $headerLine | Should -Not -BeNullOrEmpty -Because "the table should start with its header line:`n$text"
        foreach ($label in $labels) {
            $headerLine | Should -Match ([regex]::Escape($label)) -Because "column '$label' must fit in $ConsoleWidth columns:`n$text"
        }

        # The fixed widths alone: columns plus one separator each.
        $fixed = @($default.View.Control.Headers | Where-Object Width -GT 0)
        $widthSum = ($fixed | Measure-Object -Property Width -Sum).Sum + ($default.View.Control.Headers.Count - 1)
        $widthSum | Should -BeLessOrEqual $ConsoleWidth -Because 'the fixed column widths and separators must fit'
    }
}
