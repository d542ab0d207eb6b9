# plot.gp -- the chart of scripts/bench: requests/s and latency per scenario, beside the
# ceiling (the better of the first two rows), with the targets of issue 7 as dashed lines.
# Called by bench/report.py as
#   gnuplot -e "datafile='X.dat'; outfile='X.svg'; charttitle='...'" bench/plot.gp
# datafile columns: "scenario" requests_per_s p99_ms avg_ms (one row per scenario).
stats datafile every ::0::1 using 2 nooutput
ceiling = STATS_max

set terminal svg size 1000,440 dynamic font "sans,11" background rgb "white"
set output outfile
set multiplot layout 1,2 title charttitle font "sans,12"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.8
set grid ytics
set xtics nomirror
set yrange [0:*]
set key top right font "sans,9" opaque box

set title "requests/s (higher is better)"
set ylabel "requests/s"
set arrow 1 from graph 0, first 0.85 * ceiling to graph 1, first 0.85 * ceiling nohead \
    dashtype 2 linecolor rgb "#2e7d32"
set arrow 2 from graph 0, first 0.5 * ceiling to graph 1, first 0.5 * ceiling nohead \
    dashtype 3 linecolor rgb "#ef6c00"
plot datafile using 2:xtic(1) linecolor rgb "#3b6fb6" notitle, \
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.7 font "sans,9" notitle, \
     NaN with lines dashtype 2 linecolor rgb "#2e7d32" title "85% of ceiling", \
     NaN with lines dashtype 3 linecolor rgb "#ef6c00" title "50% of ceiling"
unset arrow

set title "latency (lower is better)"
set ylabel "ms"
set arrow 3 from graph 0, first 60 to graph 1, first 60 nohead dashtype 2 \
    linecolor rgb "#c8553d"
set arrow 4 from graph 0, first 20 to graph 1, first 20 nohead dashtype 3 \
    linecolor rgb "#555555"
plot datafile using 3:xtic(1) title "p99" linecolor rgb "#c8553d", \
     '' using 4 title "average" linecolor rgb "#8a8a8a", \
     NaN with lines dashtype 2 linecolor rgb "#c8553d" title "p99 target 60 ms", \
     NaN with lines dashtype 3 linecolor rgb "#555555" title "average target 20 ms"
unset multiplot
