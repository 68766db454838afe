// The patient form's live help (host pages only; plugin pages run no scripts).
//
// - The Ontario health card number: digits only, ten of them, and a valid check digit (Luhn
//   mod 10, the rule the server applies). A wrong number is flagged as it is typed and the
//   form will not submit until it is fixed; the server refuses it anyway.
// - The version code is upper-cased.
// - Possible duplicates: once the card is complete, or the names and birth date are filled
//   in, the page asks the same search API the server uses (each search is audited) and shows
//   any chart that already has them.
// Everything works without this script; it only tells the user sooner.
(function () {
  'use strict';
  var HCN_SYSTEM = 'https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn';

  function luhnOk(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function say(hint, text, kind) {
    hint.textContent = text;
    hint.className = 'hint' + (kind ? ' ' + kind : '');
  }

  function cardState(value) {
    var v = value.replace(/[\s-]/g, '');
    if (v === '') return { v: v, ok: true, text: '' };
    if (!/^[0-9]+$/.test(v)) return { v: v, ok: false, text: 'Digits only: an Ontario health card number is 10 digits.' };
    if (v.length < 10) return { v: v, ok: false, partial: true, text: v.length + ' of 10 digits' };
    if (v.length > 10) return { v: v, ok: false, text: 'Too long: an Ontario health card number is 10 digits.' };
    if (!luhnOk(v)) return { v: v, ok: false, text: 'The check digit is wrong: check the number on the card.' };
    return { v: v, ok: true, complete: true, text: '\u2713 Check digit is valid' };
  }

  function patientLabel(p) {
    var n = (p.name && p.name[0]) || {};
    var family = n.family || '';
    var given = (n.given || []).join(' ');
    var chart = (p.identifier || []).filter(function (i) { return i.system === 'urn:osler:chart-number'; })[0];
    return (family ? family.toUpperCase() + ', ' : '') + given +
      (p.birthDate ? ' (born ' + p.birthDate + ')' : '') +
      (chart ? ' \u00b7 chart ' + chart.value : '');
  }

  // Search the API; `done` gets the matching patients other than the one being edited.
  function search(query, self, done) {
    fetch('/api/v1/patients?' + query + '&_count=5', {
      credentials: 'same-origin',
      headers: { accept: 'application/json' }
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (b) {
        if (!b) return;
        done((b.entry || []).map(function (e) { return e.resource; })
          .filter(function (p) { return p.id !== self; }));
      })
      .catch(function () { /* the server checks again on submit */ });
  }

  function listInto(box, intro, patients) {
    box.textContent = '';
    if (!patients.length) { box.hidden = true; return; }
    var p = document.createElement('p');
    p.textContent = intro;
    box.appendChild(p);
    var ul = document.createElement('ul');
    patients.forEach(function (pt) {
      var li = document.createElement('li');
      var a = document.createElement('a');
      a.href = '/patients/' + encodeURIComponent(pt.id);
      a.textContent = patientLabel(pt);
      li.appendChild(a);
      ul.appendChild(li);
    });
    box.appendChild(ul);
    box.hidden = false;
  }

  function init() {
    var form = document.querySelector('form[data-patient-form]');
    if (!form) return;
    var self = form.getAttribute('data-patient-id') || '';
    var card = form.querySelector('#hcn');
    var cardHint = form.querySelector('#hcn-hint');
    var version = form.querySelector('#hcn_version');
    var dupCard = form.querySelector('#dup-card');
    var dupName = form.querySelector('#dup-name');
    var family = form.querySelector('#family');
    var given = form.querySelector('#given');
    var born = form.querySelector('#birthDate');

    if (card && cardHint) {
      var check = function (final) {
        var s = cardState(card.value);
        // While typing, "7 of 10 digits" is progress, not an error.
        say(cardHint, s.text, s.ok ? (s.complete ? 'ok' : '') : (s.partial && !final ? '' : 'bad'));
        card.setCustomValidity(s.ok ? '' : (s.partial ? 'An Ontario health card number has 10 digits.' : s.text));
        return s;
      };
      card.addEventListener('input', function () { check(false); });
      card.addEventListener('change', function () {
        var s = check(true);
        if (dupCard && s.complete) {
          search('identifier=' + encodeURIComponent(HCN_SYSTEM + '|' + s.v), self, function (found) {
            listInto(dupCard, 'This health card is already registered:', found);
          });
        } else if (dupCard) {
          dupCard.hidden = true;
        }
      });
      if (card.value) check(true);
    }
    if (version) {
      version.addEventListener('input', function () {
        var up = version.value.toUpperCase().replace(/[^A-Z]/g, '');
        if (up !== version.value) version.value = up;
      });
    }
    if (dupName && family && given && born) {
      var lookup = function () {
        var f = family.value.trim(), g = given.value.trim().split(/\s+/)[0] || '', b = born.value;
        if (!f || !g || !/^\d{4}-\d{2}-\d{2}$/.test(b)) { dupName.hidden = true; return; }
        search('name=' + encodeURIComponent(f + ' ' + g) + '&birthdate=' + encodeURIComponent(b), self,
          function (found) {
            listInto(dupName, 'Possible duplicate: a chart with this name and birth date exists.', found);
          });
      };
      [family, given, born].forEach(function (el) { el.addEventListener('change', lookup); });
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
