/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Self-contained interactive SVG flamegraph (`--flamegraph FILE.svg`) of
 * outstanding bytes. Pure: writes what the aggregator holds.
 *
 * Layout: an icicle graph (root at the top, callees below), 1200 px wide.
 * Frames are the paths of export_folded.h under one "all" root; siblings
 * are merged by name and sorted by name, widths are bytes. Frames narrower
 * than 0.1 px at full view are left out (their bytes stay in their parent).
 * Colours are warm and derived from a hash of the name, so a frame keeps
 * its colour from one file to the next; native, marker and process frames
 * get their own muted tones.
 *
 * Interaction (an embedded script, no external resources): hover shows the
 * name, bytes, allocation count and share in a tooltip and on the details
 * line; clicking a frame zooms so that its subtree fills the width, its
 * ancestors stay full width and faded; "Reset zoom", a click on "all" or
 * Escape undoes it. "Search" asks for a case-insensitive substring,
 * highlights the frames whose names contain it and shows the share of
 * bytes they cover (nested matches counted once); an empty answer clears.
 *
 * Each frame is <g class="f"><title/><rect/><text/></g>; the rect carries
 * data-name (the full frame name), data-x (byte offset from the left
 * edge), data-v (bytes), data-c (count) and data-d (depth, 0 for "all").
 * The root element carries data-total (bytes). Text from the target is
 * cleaned (see export_folded.h) and XML-escaped.
 */
#ifndef PML_EXPORT_SVG_H
#define PML_EXPORT_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "report.h"

/*
 * Write the rows of every process in procs (all of them) as one SVG; with
 * pid_root each process is a frame under "all". Returns 0, -EINVAL,
 * -ENOMEM, or -errno of a failed write.
 */
int export_svg__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		      size_t nprocs, bool pid_root);

#endif
