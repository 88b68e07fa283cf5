#!/usr/bin/perl
# Builds steerdns's built-in world database: the IPFire Location data that
# Debian ships in tor-geoipdb (country per IPv4/IPv6 range), joined with
# geoip/data/countries.tsv (continent and a representative point per country),
# written in the GeoIP2-City schema with Debian's MaxMind::DB::Writer.
#
#   build-world-mmdb.pl --countries countries.tsv --geoip geoip --geoip6 geoip6 --out world.mmdb
#
# Reproducible: the build epoch is the data's "Generated:" date (or
# SOURCE_DATE_EPOCH), and the same inputs give the same bytes.
use strict;
use warnings;
use Getopt::Long;
use MaxMind::DB::Writer::Tree;
use Time::Piece;

my ($countries, $geoip, $geoip6, $out);
GetOptions('countries=s' => \$countries, 'geoip=s' => \$geoip, 'geoip6=s' => \$geoip6,
           'out=s' => \$out) && $countries && $geoip && $geoip6 && $out
    or die "usage: $0 --countries TSV --geoip FILE --geoip6 FILE --out OUT.mmdb\n";

# Codes the data uses that are not (or no longer) countries.
my %renamed = (UK => 'GB', CS => 'RS', AN => 'CW');
# Region codes without a country: a continent and a representative point.
my %regional = (EU => ['EU', 50.1109, 8.6821],    # "Europe": Frankfurt
                AP => ['AS', 1.3521, 103.8198]);  # "Asia/Pacific": Singapore

my %record;
open my $tsv, '<', $countries or die "$countries: $!\n";
while (<$tsv>) {
    next if /^#/ || !/\S/;
    chomp;
    my ($code, $continent, $lat, $lon, undef, $name) = split /\t/;
    $record{$code} = {
        continent          => { code => $continent },
        country            => { iso_code => $code, names => { en => $name } },
        registered_country => { iso_code => $code, names => { en => $name } },
        location           => { latitude => $lat + 0, longitude => $lon + 0, accuracy_radius => 1000 },
    };
}
close $tsv;
for my $code (keys %regional) {
    my ($continent, $lat, $lon) = @{ $regional{$code} };
    $record{$code} = { continent => { code => $continent },
                       location  => { latitude => $lat, longitude => $lon, accuracy_radius => 1000 } };
}

my $epoch = $ENV{SOURCE_DATE_EPOCH};
my %types = (
    continent => 'map', country => 'map', registered_country => 'map', location => 'map',
    names => 'map', code => 'utf8_string', iso_code => 'utf8_string', en => 'utf8_string',
    latitude => 'double', longitude => 'double', accuracy_radius => 'uint16',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version            => 6,
    record_size           => 28,
    database_type         => 'steerdns-World-Country-City-Schema',
    languages             => ['en'],
    description           => { en => 'steerdns built-in world database: IPFire Location data '
                                     . '(CC BY-SA 4.0) with per-country continents and coordinates' },
    map_key_type_callback => sub { $types{ $_[0] } },
    # No aliases: the data maps 6to4 and Teredo space itself, and steerdns
    # classifies IPv4 clients from the ::/96 subtree.
    alias_ipv6_to_ipv4    => 0,
);

my ($ranges, $skipped) = (0, 0);
for my $file ($geoip, $geoip6) {
    open my $in, '<', $file or die "$file: $!\n";
    while (<$in>) {
        if (/^# Generated: (.+?)\s*$/ && !defined $epoch) {
            $epoch = Time::Piece->strptime($1, '%a, %d %b %Y %H:%M:%S GMT')->epoch;
        }
        next if /^#/ || !/\S/;
        chomp;
        my ($first, $last, $code) = split /,/;
        $code = $renamed{$code} // $code;
        if ($code eq '??' || !$record{$code}) { $skipped++; next; }
        if ($first =~ /^\d+$/) {
            $first = join '.', unpack 'C4', pack 'N', $first;
            $last  = join '.', unpack 'C4', pack 'N', $last;
        }
        $tree->insert_range($first, $last, $record{$code});
        $ranges++;
    }
    close $in;
}
die "no build date: set SOURCE_DATE_EPOCH\n" unless defined $epoch;
$tree->_set_build_epoch($epoch);  # the writer's hook for identical output
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
printf STDERR "%s: %d ranges, %d skipped (unknown or reserved), build epoch %d\n", $out, $ranges, $skipped, $epoch;
